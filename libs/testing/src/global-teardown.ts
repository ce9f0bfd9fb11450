import { S3_SERVERS_KEY } from './global-setup';
import { S3ProxyHandle } from './lib/s3proxy.harness';

/** Jest global teardown of the root config: stops the S3Proxy servers the global setup started. */
export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as Record<string, unknown>;
  const servers = (holder[S3_SERVERS_KEY] as S3ProxyHandle[] | undefined) ?? [];
  delete holder[S3_SERVERS_KEY];
  const results = await Promise.allSettled(servers.map((server) => server.stop()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
}
