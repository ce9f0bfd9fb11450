export * from './lib/oltp-seed';
export * from './lib/content-seed';
export * from './lib/olap-seed';
export type { SeedOptions, SeedResult } from './lib/seed-runner';
export * from './lib/table-checksums';
