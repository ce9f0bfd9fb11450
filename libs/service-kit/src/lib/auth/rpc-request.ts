import type { ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import type { Principal } from '@rookery/auth';
import type { AuditedRequest } from '../events/audit.interceptor';
import { ROUTE_ACCESS, RouteAccess } from './auth.decorator';

/** What a gRPC handler receives after its message and metadata (grpc-js' call object). */
interface GrpcCall {
  getPath?(): string;
  getPeer?(): string;
}

/** A gRPC call as the guard and the audit trail read it, with the REST request's fields. */
export interface RpcRequest extends AuditedRequest {
  /** A write (its access rule does not admit auditors): audited like a REST write. */
  privileged: boolean;
}

const requests = new WeakMap<object, RpcRequest>();

/**
 * The call of an 'rpc' context as a request: method GRPC, the method's path as the URL
 * (/rookery.v1.BackupService/StartBackup), the `authorization` metadata as the header, the
 * peer's address, and the request message as the body (its `tier` is where a tier-scoped method
 * reads the tier). One object per call, so the principal the guard leaves on it reaches the
 * audit trail and the handler (principalOfCall).
 */
export function rpcRequestOf(context: ExecutionContext): RpcRequest {
  const [message, metadata, call] = context.getArgs<[unknown, Metadata | undefined, GrpcCall | undefined]>();
  const key = (call ?? metadata ?? context) as object;
  const known = requests.get(key);
  if (known) return known;
  const access =
    (Reflect.getMetadata(ROUTE_ACCESS, context.getHandler()) as RouteAccess | undefined) ??
    (Reflect.getMetadata(ROUTE_ACCESS, context.getClass()) as RouteAccess | undefined);
  const authorization = metadata?.get('authorization')[0];
  const request: RpcRequest = {
    method: 'GRPC',
    url: call?.getPath?.() ?? `/${context.getClass().name}/${context.getHandler().name}`,
    headers: { authorization: typeof authorization === 'string' ? authorization : undefined },
    ip: peerAddress(call?.getPeer?.()),
    body: message,
    privileged: access?.kind === 'roles' && !access.roles.includes('auditor'),
  };
  requests.set(key, request);
  return request;
}

/** The principal AuthGuard verified for a gRPC call (the handler's third argument); undefined when none. */
export function principalOfCall(call: object): Principal | undefined {
  return requests.get(call)?.principal;
}

/** 'ipv4:127.0.0.1:50312' → '127.0.0.1'; '[::1]:50312' and 'ipv6:[::1]:50312' → '::1'. */
function peerAddress(peer: string | undefined): string | undefined {
  if (!peer) return undefined;
  const address = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  if (bracketed) return bracketed[1];
  return address.replace(/:\d+$/, '');
}
