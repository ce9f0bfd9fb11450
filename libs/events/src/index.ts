export * from './lib/backup-events';
export * from './lib/cloud-event';
export * from './lib/event-bus';
export * from './lib/event-bus.factory';
export * from './lib/event-types';
export * from './lib/in-process.bus';
export * from './lib/kafka.bus';
export * from './lib/outbox';
