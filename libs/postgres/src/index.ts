export * from './lib/pg-basebackup.driver';
export * from './lib/pg-binaries';
export * from './lib/pg-connection';
export * from './lib/pg-control.client';
export * from './lib/pg-ctl.driver';
export * from './lib/pg-sql.client';
export * from './lib/process.runner';
export * from './lib/scratch-cluster';
