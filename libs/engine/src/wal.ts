// @rookery/engine/wal: WAL transfer without the rest of the engine (wal-push, wal-get and the
// background archiver of asynchronous archiving load this, not the package index).
export * from './lib/wal.transfer';
export * from './lib/wal.factory';
export * from './lib/wal.spool';
export * from './lib/wal-archiver.daemon';
export * from './lib/wal-archiver.foreground';
export * from './lib/wal-prefetch';
