export * from './lib/backup.catalog';
export * from './lib/catalog.outbox';
export * from './lib/event.ledger';
export { CATALOG_MIGRATIONS, createCatalogDataSource } from './lib/catalog-data-source.factory';
export type { CatalogDataSourceOptions } from './lib/catalog-data-source.factory';
