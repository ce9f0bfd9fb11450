export {};
export * from './lib/cluster.harness';
