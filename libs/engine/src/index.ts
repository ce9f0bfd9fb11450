export * from './lib/engine.module';
