import type { ServiceHttpConfig } from '@rookery/config';

interface GateRequest {
  method: string;
  protocol?: string;
  headers: Record<string, string | string[] | undefined>;
}

interface GateReply {
  status(code: number): GateReply;
  setHeader(name: string, value: string): void;
  json(body: unknown): void;
}

/**
 * What every request passes before body parsing and routing. A browser request from another
 * origin (an Origin header not this service's own nor in service.allowedOrigins) is refused 403:
 * no CORS headers are ever sent, and a page elsewhere cannot make the browser call us either. A
 * request with a body must send JSON (415 otherwise): form and text/plain posts, which browsers
 * send cross-site without asking, never reach a handler.
 */
export function httpGate(config: Pick<ServiceHttpConfig, 'allowedOrigins'>) {
  const allowed = new Set(config.allowedOrigins);
  return (request: GateRequest, reply: GateReply, next: () => void): void => {
    const origin = single(request.headers['origin']);
    if (origin !== undefined && !allowed.has(origin) && origin !== `${request.protocol ?? 'http'}://${single(request.headers['host'])}`) {
      reply.status(403).json({
        code: 'ORIGIN_REFUSED',
        message: `requests from origin ${origin} are refused (no CORS)`,
        hint: 'list it in service.allowedOrigins',
      });
      return;
    }
    if (hasBody(request) && !isJson(single(request.headers['content-type']))) {
      reply.status(415).json({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: `request bodies must be application/json, got ${single(request.headers['content-type']) ?? 'no content type'}`,
      });
      return;
    }
    next();
  };
}

function hasBody(request: GateRequest): boolean {
  const length = single(request.headers['content-length']);
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/json\s*(;|$)/i.test(contentType);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
