export * from './lib/backup.repository';
export * from './lib/repository.layout';
export * from './lib/repository.lock';
export * from './lib/wal.archive';
export * from './lib/backup.replicator';
export * from './lib/replica.copy';
export * from './lib/wal.replicator';
export * from './lib/legal-hold.repository';
