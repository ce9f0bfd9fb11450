export {};
export * from './lib/cluster.harness';
export * from './lib/s3proxy.harness';
export * from './lib/oltp-seed';
export * from './lib/table-checksums';
export * from './lib/manifest.factory';
export * from './lib/kafka.harness';
