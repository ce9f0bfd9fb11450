export * from './lib/repository.module';
