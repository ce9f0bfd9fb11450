export {};
export * from './lib/cluster.harness';
export * from './lib/s3proxy.harness';
// The synthetic tier databases and table checksums live in @rookery/demo (product code uses them
// for `rookery demo`); specs keep reaching them here, beside the rest of the harness.
export * from '@rookery/demo';
export * from './lib/manifest.factory';
export * from './lib/kafka.harness';
export * from './lib/kafka-consumer-lag';
export * from './lib/poll';
export * from './lib/fault-proxy';
export * from './lib/service.harness';
export * from './lib/wal-archived';
export * from './lib/seeded-random';
export * from './lib/rookery-cli';
export * from './lib/directory-entries';
export * from './lib/wal-segment.factory';
export * from './lib/loose-umask';
export * from './lib/service-auth.harness';
export * from './lib/tablespaces';
export * from './lib/grpc.harness';
export * from './lib/test-certificates';
export * from './lib/byte-streams';
