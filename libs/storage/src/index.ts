export * from './lib/fs-store.driver';
export * from './lib/fs-repository-access';
export * from './lib/s3-store.config';
export * from './lib/store.factory';
export { assertStoreKey, assertStorePrefix } from './lib/store-key';
