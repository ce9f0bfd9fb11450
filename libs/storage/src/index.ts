export * from './lib/fs-store.driver';
export * from './lib/fs-repository-access';
export * from './lib/s3-store.config';
export * from './lib/store.factory';
export { assertStoreKey, assertStorePrefix } from './lib/store-key';
// Type only: the driver module (and the AWS SDK) loads when createStore meets an s3:// location.
export type { S3StoreDriver } from './lib/s3-store.driver';
