import {
  BadRequestException,
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  PipeTransform,
  UseInterceptors,
  applyDecorators,
} from '@nestjs/common';
import { ApiBody } from '@nestjs/swagger';
import { Observable } from 'rxjs';
import { z } from 'zod';

/**
 * Validates a request body against a strict zod schema: an unknown field is a 400 naming it (a
 * typo never silently falls back to a default), as is a wrong value. An absent body is `{}`.
 */
export class BodySchemaPipe<Schema extends z.ZodTypeAny> implements PipeTransform<unknown, z.infer<Schema>> {
  constructor(private readonly schema: Schema) {}

  transform(value: unknown): z.infer<Schema> {
    const body = value ?? {};
    const result = this.schema.safeParse(body);
    if (result.success) return result.data;
    const unknown = result.error.issues.flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys : []));
    const problems = result.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `'${[...issue.path, key].join('.')}'`).join(', ')}`
        : `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`,
    );
    throw new BadRequestException({
      code: 'REQUEST_INVALID',
      message: `invalid request body: ${problems.join('; ')}`,
      ...(unknown.length ? { unknownFields: unknown } : {}),
    });
  }
}

const emptyBody = z.object({}).strict();

/** Refuses any field in the body of a route that takes none, as BodySchemaPipe would (400 naming it). */
@Injectable()
export class NoBodyInterceptor implements NestInterceptor {
  private readonly pipe = new BodySchemaPipe(emptyBody);

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    // Runs inside the audit interceptor: a refused body is audited as a failed call.
    this.pipe.transform(context.switchToHttp().getRequest<{ body?: unknown }>().body);
    return next.handle();
  }
}

/** A route that takes no body (a cancel, a release): `{}` or nothing; any field is a 400 naming it. */
export function NoBody(): MethodDecorator {
  return applyDecorators(
    UseInterceptors(NoBodyInterceptor),
    ApiBody({ schema: { type: 'object', properties: {}, additionalProperties: false }, required: false }),
  );
}
