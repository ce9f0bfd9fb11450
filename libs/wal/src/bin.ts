// The one entry of @rookery/wal besides its index: what bin/rookery.js requires, by the fixed path
// dist/libs/wal/src/bin.js, before any other library is loaded (a process per WAL file: node
// built-ins only, no @rookery/* import). Everything else of WAL goes through the index.
export { walPushFastPath } from './lib/wal-archiver.foreground';
export type { ArchiverLaunch, ArchiverLauncher, ForegroundOutput, WalLaunchers } from './lib/wal-archiver.foreground';
export { WAL_COMMANDS, commandOf } from './lib/wal.arguments';
export type { PrefetcherLaunch, PrefetcherLauncher } from './lib/wal-prefetch';
