export * from './lib/config.loader';
export * from './lib/rookery-config';
export { describeIssues, rookeryFileSchema } from './lib/rookery-config.schema';
export type { RookeryFile } from './lib/rookery-config.schema';
export * from './lib/key-file';
export * from './lib/service-token';
