import { BadRequestException, PipeTransform } from '@nestjs/common';
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
