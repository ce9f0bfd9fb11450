import { S3ProxyHandle, S3Region, TEST_S3_BUCKET, publishSharedS3, startS3Proxy } from './lib/s3proxy.harness';

/**
 * Jest global setup of the root config: starts two S3Proxy servers standing for the two regions of
 * DESIGN §11 and publishes them to the test workers through process.env (workers are forked after
 * this runs). AWS_* variables point the SDK default chain of child processes (the rookery CLI run
 * by integration specs) at the same credentials. The teardown stops them; so does this function if
 * either fails to start, since jest runs no teardown after a failed setup.
 */
export const S3_SERVERS_KEY = '__rookeryS3Servers';

const REGIONS: Record<S3Region, string> = { primary: 'us-east-1', secondary: 'eu-west-1' };

export default async function globalSetup(): Promise<void> {
  const started = await Promise.allSettled(
    (Object.keys(REGIONS) as S3Region[]).map((region) =>
      startS3Proxy({ region: REGIONS[region], buckets: [TEST_S3_BUCKET] }).then((server) => ({ region, server })),
    ),
  );
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await Promise.all(servers.map(({ server }) => server.stop()));
    throw failure.reason;
  }
  (globalThis as Record<string, unknown>)[S3_SERVERS_KEY] = servers.map(({ server }) => server);

  for (const { region, server } of servers) publishSharedS3(region, server);
  const primary = servers.find(({ region }) => region === 'primary')?.server as S3ProxyHandle;
  process.env['ROOKERY_TEST_S3_BUCKET'] = TEST_S3_BUCKET;
  // Specs assert that a CLI run printed no warning or error on stderr; a progress line (info: one
  // per 10 s of a step when stderr is not a terminal, so only on a slow or loaded machine) is
  // neither. The spec of progress lines asks for them with --log-level info.
  process.env['ROOKERY_LOG_LEVEL'] ??= 'warn';
  process.env['AWS_ACCESS_KEY_ID'] = primary.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = primary.secretAccessKey;
  process.env['AWS_REGION'] = primary.region;
  delete process.env['AWS_SESSION_TOKEN'];
  delete process.env['AWS_PROFILE'];
}
