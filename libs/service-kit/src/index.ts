export * from './lib/service-kit.module';
