import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, RookeryError, redactUrl } from '@rookery/core';
import { DataSource } from 'typeorm';
import { BackupRecordEntity } from './backup-record.entity';
import { AddBackupRecordParent1795737600000 } from './migrations/add-backup-record-parent.migration';
import { CreateBackupRecord1767225600000 } from './migrations/create-backup-record.migration';
import { CreateLedgerEvent1795654800000 } from './migrations/create-ledger-event.migration';
import { CreateOutboxEvent1795651200000 } from './migrations/create-outbox-event.migration';
import { LedgerEventEntity } from './ledger-event.entity';
import { OutboxEventEntity } from './outbox-event.entity';

/** Every migration of the catalog schema, oldest first. */
export const CATALOG_MIGRATIONS = [
  CreateBackupRecord1767225600000,
  CreateOutboxEvent1795651200000,
  CreateLedgerEvent1795654800000,
  AddBackupRecordParent1795737600000,
];
export const CATALOG_ENTITIES = [BackupRecordEntity, OutboxEventEntity, LedgerEventEntity];

export interface CatalogDataSourceOptions {
  /** Base for relative sqlite:// paths; default: the working directory. */
  cwd?: string;
}

/**
 * The catalog's TypeORM data source for `sqlite://relative/path`, `sqlite:///absolute/path`,
 * `sqlite://:memory:` (better-sqlite3) or `postgres://…` (pg). Not yet initialised: initialize()
 * runs the pending migrations (`migrationsRun`); the schema is never synchronised from entities.
 */
export function createCatalogDataSource(url: string, options: CatalogDataSourceOptions = {}): DataSource {
  const common = {
    entities: CATALOG_ENTITIES,
    migrations: CATALOG_MIGRATIONS,
    migrationsTableName: 'catalog_migrations',
    migrationsRun: true,
    synchronize: false,
    logging: false,
  } as const;
  if (url.startsWith('sqlite://')) {
    return new DataSource({ type: 'better-sqlite3', database: sqlitePath(url, options.cwd), ...common });
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    return new DataSource({
      type: 'postgres',
      url,
      applicationName: 'rookery-catalog',
      extra: { max: 4 },
      ...common,
    });
  }
  throw new ConfigError(`unsupported catalog url '${redactUrl(url)}'`, ['catalog.url'], {
    hint: 'use sqlite://path/to/catalog.sqlite, sqlite://:memory: or postgres://host/database',
  });
}

/**
 * The catalog's data source, initialised, its migrations run under a database lock. A database
 * that cannot be reached or opened is one error naming it, not the driver's bare `connect ECONNREFUSED`.
 */
export async function openCatalogDataSource(url: string, options: CatalogDataSourceOptions = {}): Promise<DataSource> {
  const dataSource = createCatalogDataSource(url, options);
  dataSource.setOptions({ migrationsRun: false });
  try {
    if (dataSource.options.type === 'better-sqlite3' && dataSource.options.database !== ':memory:')
      ensurePrivateFile(dataSource.options.database);
    await dataSource.initialize();
    await migrateUnderLock(dataSource);
    return dataSource;
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new RookeryError('CATALOG_UNAVAILABLE', 'storage', `cannot open the catalog database ${redactUrl(url)}: ${detail}`, {
      cause: error,
      retryable: true,
      hint: 'check catalog.url (or ROOKERY_CATALOG_URL) and that the database is up',
    });
  }
}

/** pg_advisory_lock key of catalog migrations ('rookmigr' in ASCII): one per catalog database. */
export const CATALOG_MIGRATION_LOCK = '8245931949926475634';

/**
 * Runs the pending migrations. On PostgreSQL several services start on one catalog database: the
 * first to take the advisory lock migrates, the others wait for it and then find nothing pending
 * (without the lock two of them both create catalog_migrations and one fails). SQLite needs none:
 * a file's writers are serialised by the database itself, and services share no SQLite file.
 */
async function migrateUnderLock(dataSource: DataSource): Promise<void> {
  if (dataSource.options.type !== 'postgres') {
    await dataSource.runMigrations({ transaction: 'all' });
    return;
  }
  const session = dataSource.createQueryRunner();
  try {
    await session.query('select pg_advisory_lock($1)', [CATALOG_MIGRATION_LOCK]);
    try {
      await dataSource.runMigrations({ transaction: 'all' });
    } finally {
      await session.query('select pg_advisory_unlock($1)', [CATALOG_MIGRATION_LOCK]);
    }
  } finally {
    await session.release();
  }
}

function sqlitePath(url: string, cwd = process.cwd()): string {
  const rest = decodeURIComponent(url.slice('sqlite://'.length));
  if (rest === ':memory:') return rest;
  if (rest === '') {
    throw new ConfigError(`catalog url '${url}' names no file`, ['catalog.url'], {
      hint: 'use sqlite://relative/path.sqlite or sqlite:///absolute/path.sqlite',
    });
  }
  const path = isAbsolute(rest) ? rest : resolve(cwd, rest);
  mkdirSync(dirname(path), { recursive: true, mode: SQLITE_DIRECTORY_MODE });
  return path;
}

/** Directories rookery creates for a SQLite catalog: its owner's alone. */
const SQLITE_DIRECTORY_MODE = 0o700;
/** A SQLite catalog file: its owner's alone. SQLite gives its -wal and -shm files the database file's mode. */
export const SQLITE_FILE_MODE = 0o600;

/**
 * Creates the catalog file 0600 before SQLite opens it (SQLite would create it 0644 less the
 * umask), and takes group and other access away from an existing one of ours and its -wal and
 * -shm (catalogs created before followed the umask). Another account's file keeps its mode.
 */
function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', SQLITE_FILE_MODE));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    const stats = statSync(file, { throwIfNoEntry: false });
    if (stats && (stats.mode & 0o077) !== 0 && stats.uid === process.getuid?.()) chmodSync(file, SQLITE_FILE_MODE);
  }
}
