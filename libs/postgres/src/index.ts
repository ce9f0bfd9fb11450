export * from './lib/postgres.module';
