export * from './lib/backup.validator';
export * from './lib/restore.drill';
export * from './lib/drill.event';
export * from './lib/failure.event';
export * from './lib/validation-check';
export * from './lib/validation.tools';
export * from './lib/disaster-recovery.plan';
export * from './lib/disaster-recovery';
