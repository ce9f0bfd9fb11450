export * from './lib/backup-id';
export * from './lib/lsn';
export * from './lib/manifest';
export * from './lib/rookery.errors';
export * from './lib/secret';
export * from './lib/store.port';
export * from './lib/tier';
export * from './lib/wal';
