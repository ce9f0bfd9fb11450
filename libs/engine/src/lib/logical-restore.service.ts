import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ArtifactRecord,
  BackupManifest,
  ConfigError,
  IntegrityError,
  InvariantError,
  LogicalBackupInfo,
  RestoreTargetError,
  TierName,
} from '@rookery/core';
import { RestoreSelection, StreamedRestore, TocEntry, describePgUrl } from '@rookery/postgres';
import { encryptionRequired } from '@rookery/wal';
import { keyMaterialFor, readArtifact, readArtifactInto } from './artifact.codec';
import { EngineContext } from './engine.context';
import { ProgressListener } from './engine.progress';
import { resolveChain } from './logical-incremental.service';
import { LogicalTools } from './logical-tools';

export interface LogicalRestoreRequest {
  tier: TierName;
  /** A backup id or 'latest'. */
  backup: string;
  /** The database to restore into: created when absent, else it must have no user tables. */
  targetUrl: string;
  /**
   * Replace what is there. A whole restore recreates the target database (so it ends identical
   * to the backup); a selective one drops and recreates only the selected objects.
   */
  clean?: boolean;
  /** Only this table ('name' or 'schema.name'): its definition and rows. */
  table?: string;
  /** Only this schema, with everything in it. */
  schema?: string;
  /** pg_restore workers; above 1 each artifact is fetched and verified to a local file first. */
  jobs?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface LogicalRestoreResult {
  manifest: BackupManifest;
  /** host:port/database of the target. */
  target: string;
  createdDatabase: boolean;
  /** Logical bytes of the artifacts applied. */
  bytes: number;
  /** Materialized views refreshed after the restore, in the order they were refreshed. */
  refreshedMaterializedViews: string[];
  /** The backups applied, in order: the full, then each incremental up to the one restored. */
  chain: string[];
  /** How each step ran: streamed into pg_restore (or psql, a changeset), or from a verified local copy. */
  steps: { backup: string; artifact: string; sections: string[]; mode: 'stream' | 'local'; jobs: number }[];
}

/**
 * Restores a logical backup into a database. Nothing is applied from bytes that have not passed
 * their checks:
 * - streamed steps (one job, whole restore) run pg_restore in a single transaction fed straight
 *   from the store, with the archive's last bytes held back until every checksum passed, so a
 *   corrupted artifact is rolled back, and reported as the integrity error it is;
 * - parallel (--jobs > 1), selective and directory-format steps, and artifacts applied in several
 *   steps, are first fetched to a local file or directory and fully verified (pg_restore -j needs
 *   a seekable archive, and a selective pg_restore may finish before reading the whole stream).
 * A database the restore created is dropped again on failure.
 */
export class LogicalRestoreService {
  constructor(
    private readonly context: EngineContext,
    private readonly tools: () => Promise<LogicalTools>,
  ) {}

  async restore(request: LogicalRestoreRequest): Promise<LogicalRestoreResult> {
    const { repository } = this.context;
    const requested = await repository.find(request.tier, request.backup);
    if (requested.method !== 'logical' || !requested.logical) {
      throw new RestoreTargetError(`backup '${requested.id}' is ${requested.method}; --target-url restores logical backups`, {
        hint: 'restore physical backups into a data directory with --to',
      });
    }
    // An incremental restores as its chain: the full, then each incremental up to it, in order.
    const chain = requested.type === 'incremental' ? resolveChain((await repository.list(request.tier)).backups, requested) : [requested];
    const [manifest, ...incrementals] = chain;
    const logical = manifest.logical as LogicalBackupInfo;
    // Every key is checked before anything is fetched or written.
    const [keyMaterial, ...incrementalKeys] = chain.map((link) => keyMaterialFor(link, this.context.encoding));
    const tools = await this.tools();
    let selection = selectionOf(request);
    const selective = Boolean(selection.tables?.length || selection.schemas?.length);
    if (selective && incrementals.length) {
      throw new RestoreTargetError(`backup '${requested.id}' is an incremental: --table and --schema restore fulls only`, {
        hint: 'restore the incremental whole into a scratch database and copy the table from there',
      });
    }
    const jobs = Math.max(1, request.jobs ?? 1);

    // Refuse before fetching anything: a database with user tables is left exactly as it is.
    const target = await this.requireTarget(request);
    const stage = await mkdtemp(join(tools.workDirectory, 'rookery-restore-'));
    const local = new Map<string, string>();
    const steps: LogicalRestoreResult['steps'] = [];
    let createdDatabase = false;
    // The partitions a --table of a partitioned table brings: pg_restore --table restores them as
    // tables, rookery attaches them once their rows are in.
    let attach: PartitionAttachment[] = [];
    try {
      // A selection that names what the backup does not hold would restore nothing and say
      // "restored": refused (exit 2) before the target is touched, naming every miss.
      if (selective) {
        for (const { artifact: name } of logical.steps) {
          if (!local.has(name))
            local.set(name, await this.fetchLocal(request, manifest, findArtifact(manifest, name), keyMaterial, stage, logical.format));
        }
        const contents = (
          await Promise.all([...local.values()].map((path) => tools.restore.list(path, { signal: request.signal })))
        ).flat();
        requireSelectionFound(selection, contents, manifest);
        if (selection.tables?.length && contents.some((entry) => entry.type === 'TABLE ATTACH')) {
          const scripts = await Promise.all(
            [...local.values()].map((path) => tools.restore.preDataScript(path, { signal: request.signal })),
          );
          ({ selection, attach } = withPartitions(selection, partitionAttachments(scripts.join('\n'))));
        }
      }
      createdDatabase = await this.prepareTarget(request, target, selective);
      // pg_restore --schema restores what is in a schema, not the schema itself.
      for (const schema of selection.schemas ?? [])
        await tools.sql.query(request.targetUrl, `create schema if not exists ${quoteIdent(schema)}`);
      const uses = countUses(logical);
      for (const [index, step] of logical.steps.entries()) {
        const artifact = findArtifact(manifest, step.artifact);
        const mode = logical.format === 'directory' || jobs > 1 || selective || (uses.get(step.artifact) ?? 0) > 1 ? 'local' : 'stream';
        const stepSelection = { ...selection, sections: step.sections };
        // Only a selective --clean drops objects; a whole --clean restore recreated the database.
        const clean = Boolean(request.clean && selective && index === 0);
        if (mode === 'stream') {
          await this.applyStreamed(request, manifest, artifact, keyMaterial, { ...stepSelection, clean });
        } else {
          if (!local.has(artifact.name))
            local.set(artifact.name, await this.fetchLocal(request, manifest, artifact, keyMaterial, stage, logical.format));
          await tools.restore.restore({
            url: request.targetUrl,
            input: local.get(artifact.name) as string,
            jobs,
            clean,
            signal: request.signal,
            ...stepSelection,
          });
        }
        steps.push({ backup: manifest.id, artifact: artifact.name, sections: step.sections, mode, jobs: mode === 'local' ? jobs : 1 });
      }
      for (const attachment of attach) await tools.sql.query(request.targetUrl, attachment.statement);
      let bytes = [...new Set(steps.map((step) => step.artifact))].reduce((sum, name) => sum + findArtifact(manifest, name).bytes, 0);
      for (const [index, incremental] of incrementals.entries()) {
        const artifact = await this.applyChangeset(request, incremental, incrementalKeys[index], `${index + 1} of ${incrementals.length}`);
        steps.push({ backup: incremental.id, artifact: artifact.name, sections: ['data'], mode: 'stream', jobs: 1 });
        bytes += artifact.bytes;
      }
      const refreshedMaterializedViews = await this.refreshMaterializedViews(request, selection);
      return {
        manifest: requested,
        chain: chain.map((link) => link.id),
        target: describePgUrl(request.targetUrl),
        createdDatabase,
        bytes,
        refreshedMaterializedViews,
        steps,
      };
    } catch (error) {
      if (createdDatabase) await this.dropDatabase(request.targetUrl).catch(() => undefined);
      throw error;
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /**
   * What the target database is: absent, empty, or holding user tables, which is refused unless
   * --clean. Changes nothing.
   */
  private async requireTarget(request: LogicalRestoreRequest): Promise<TargetState> {
    const tools = await this.tools();
    const database = databaseOf(request.targetUrl);
    const maintenance = withDatabase(request.targetUrl, 'postgres');
    const [exists] = await tools.sql.query<{ exists: boolean }>(
      maintenance,
      'select exists (select 1 from pg_database where datname = $1) as exists',
      [database],
    );
    if (!exists.exists) return 'absent';
    const [{ tables }] = await tools.sql.query<{ tables: string }>(
      request.targetUrl,
      `select count(*) as tables from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p', 'm', 'f') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`,
    );
    if (Number(tables) === 0) return 'empty';
    if (!request.clean) {
      throw new RestoreTargetError(`database '${database}' on ${describePgUrl(request.targetUrl)} is not empty (${tables} user tables)`, {
        hint: 'restore into a new or empty database, or pass --clean to replace what is there',
      });
    }
    return 'not-empty';
  }

  /**
   * Creates the target database when it was absent; a whole restore with --clean recreates a
   * database that was not empty. Returns true when created.
   */
  private async prepareTarget(request: LogicalRestoreRequest, state: TargetState, selective: boolean): Promise<boolean> {
    const tools = await this.tools();
    const database = quoteIdent(databaseOf(request.targetUrl));
    const maintenance = withDatabase(request.targetUrl, 'postgres');
    if (state === 'absent') {
      await tools.sql.query(maintenance, `create database ${database}`);
      return true;
    }
    if (state === 'not-empty' && !selective) {
      // A whole restore with --clean: the database is recreated, so nothing outside the backup survives.
      await tools.sql.query(maintenance, `drop database ${database} with (force)`);
      await tools.sql.query(maintenance, `create database ${database}`);
    }
    return false;
  }

  /**
   * One pg_restore in a single transaction, fed from the store. If the artifact fails a check,
   * pg_restore is killed before it saw the end of its input (nothing is committed) and the
   * integrity error is what the caller gets, whatever pg_restore said about the bad bytes.
   */
  private async applyStreamed(
    request: LogicalRestoreRequest,
    manifest: BackupManifest,
    artifact: ArtifactRecord,
    keyMaterial: Buffer | null,
    selection: RestoreSelection & { clean: boolean },
  ): Promise<void> {
    const tools = await this.tools();
    await this.feed(
      request,
      manifest,
      artifact,
      keyMaterial,
      tools.restore.restoreStream({ url: request.targetUrl, signal: request.signal, ...selection }),
    );
  }

  /**
   * Applies an incremental's changeset with psql in one transaction, fed from the store: committed
   * only once every check of the artifact passed. A failure names the backup and its place in the chain.
   */
  private async applyChangeset(
    request: LogicalRestoreRequest,
    manifest: BackupManifest,
    keyMaterial: Buffer | null,
    place: string,
  ): Promise<ArtifactRecord> {
    const tools = await this.tools();
    const changes = manifest.logical?.changes;
    if (!changes) throw new InvariantError(`incremental backup '${manifest.id}' has no changeset`);
    const artifact = findArtifact(manifest, changes.artifact);
    try {
      await this.feed(
        request,
        manifest,
        artifact,
        keyMaterial,
        tools.restore.applyScriptStream({ url: request.targetUrl, signal: request.signal }),
      );
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      throw new IntegrityError(`${error.message} (incremental backup '${manifest.id}', ${place} in the chain)`, {
        cause: error,
        hint: `run rookery verify --tier ${manifest.tier} --backup ${manifest.id}; restore an earlier backup of the chain, or a later full`,
      });
    }
    return artifact;
  }

  private async feed(
    request: LogicalRestoreRequest,
    manifest: BackupManifest,
    artifact: ArtifactRecord,
    keyMaterial: Buffer | null,
    target: StreamedRestore,
  ): Promise<void> {
    const { repository } = this.context;
    const consumer = { sink: target.sink, result: target.result, abort: (error: Error) => target.abort(error) };
    await readArtifactInto(repository.store, manifest, artifact, repository.artifactKey(manifest, artifact.name), consumer, {
      keyMaterial,
      requireEncryption: encryptionRequired(this.context.encoding),
      signal: request.signal,
      onStoredBytes: (bytes) =>
        request.onProgress?.({ phase: 'download', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
    });
  }

  /** Fetches and verifies an artifact into the stage: a custom-format file or an unpacked directory. */
  private async fetchLocal(
    request: LogicalRestoreRequest,
    manifest: BackupManifest,
    artifact: ArtifactRecord,
    keyMaterial: Buffer | null,
    stage: string,
    format: LogicalBackupInfo['format'],
  ): Promise<string> {
    const { repository } = this.context;
    const tools = await this.tools();
    const path = join(stage, artifact.name.replace(/[^A-Za-z0-9._-]/g, '_'));
    const options = {
      keyMaterial,
      requireEncryption: encryptionRequired(this.context.encoding),
      signal: request.signal,
      target: stage,
      onStoredBytes: (bytes: number) =>
        request.onProgress?.({ phase: 'download', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
    };
    const key = repository.artifactKey(manifest, artifact.name);
    if (format === 'custom') {
      await readArtifact(repository.store, manifest, artifact, key, createWriteStream(path, { mode: 0o600 }), options);
      return path;
    }
    await mkdir(path, { mode: 0o700 });
    const controller = new AbortController();
    const unpack = tools.restore.unpackDirectoryDump(path, {
      signal: request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal,
    });
    await readArtifactInto(
      repository.store,
      manifest,
      artifact,
      key,
      { sink: unpack.sink, result: unpack.done, abort: (error) => controller.abort(error) },
      options,
    );
    return path;
  }

  /**
   * Materialized views come back as definitions: each one in the restored scope is refreshed, a
   * view over another view after it, and reported.
   */
  private async refreshMaterializedViews(request: LogicalRestoreRequest, selection: RestoreSelection): Promise<string[]> {
    const tools = await this.tools();
    return tools.sql.withSession(request.targetUrl, async (session) => {
      const views = await session.query<{ name: string; schema: string; relname: string }>(
        `select quote_ident(schemaname) || '.' || quote_ident(matviewname) as name, schemaname as schema, matviewname as relname
         from pg_matviews order by 1`,
      );
      const edges = await session.query<{ view: string; dependsOn: string }>(
        `select distinct quote_ident(vn.nspname) || '.' || quote_ident(v.relname) as view,
                quote_ident(tn.nspname) || '.' || quote_ident(t.relname) as "dependsOn"
         from pg_class v join pg_namespace vn on vn.oid = v.relnamespace
         join pg_rewrite r on r.ev_class = v.oid
         join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
         join pg_class t on t.oid = d.refobjid and t.relkind = 'm' and t.oid <> v.oid
         join pg_namespace tn on tn.oid = t.relnamespace
         where v.relkind = 'm'`,
      );
      const inScope = views.filter(
        (view) =>
          (!selection.schemas?.length || selection.schemas.includes(view.schema)) &&
          (!selection.tables?.length || selection.tables.includes(view.relname)),
      );
      const refreshed: string[] = [];
      for (const name of dependencyOrder(
        inScope.map((view) => view.name),
        edges,
      )) {
        await session.query(`refresh materialized view ${name}`);
        refreshed.push(name);
      }
      return refreshed;
    });
  }

  private async dropDatabase(url: string): Promise<void> {
    const tools = await this.tools();
    await tools.sql.query(withDatabase(url, 'postgres'), `drop database if exists ${quoteIdent(databaseOf(url))} with (force)`);
  }
}

type TargetState = 'absent' | 'empty' | 'not-empty';

/** What pg_restore --table selects: tables, views, materialized views, sequences, foreign tables. */
const TABLE_LIKE = new Set(['TABLE', 'VIEW', 'MATERIALIZED VIEW', 'SEQUENCE', 'FOREIGN TABLE']);

/**
 * The parts of a --table / --schema selection the archive's table of contents does not hold:
 * each schema with no object in it, each table with no table-like object of that name (in the
 * selected schemas, when any). Names are exact, as pg_restore takes them.
 */
export function selectionMisses(selection: RestoreSelection, contents: readonly Pick<TocEntry, 'type' | 'schema' | 'name'>[]): string[] {
  const schemas = selection.schemas ?? [];
  const missingSchemas = schemas.filter((schema) => !contents.some((entry) => entry.schema === schema));
  const missingTables = (selection.tables ?? []).filter(
    (table) =>
      !contents.some((entry) => TABLE_LIKE.has(entry.type) && entry.name === table && (!schemas.length || schemas.includes(entry.schema))),
  );
  return [
    ...missingSchemas.map((schema) => `--schema '${schema}'`),
    ...missingTables.map((table) => `--table '${schemas.length ? `${schemas.join(',')}.` : ''}${table}'`),
  ];
}

/** Refuses (exit 2) a selection any part of which is not in the backup: nothing is restored then. */
function requireSelectionFound(selection: RestoreSelection, contents: readonly TocEntry[], manifest: BackupManifest): void {
  const misses = selectionMisses(selection, contents);
  if (!misses.length) return;
  throw new ConfigError(
    `${misses.join(' and ')} ${misses.length > 1 ? 'match' : 'matches'} nothing in backup '${manifest.id}' of tier '${manifest.tier}'; nothing was restored`,
    ['--table', '--schema'],
    {
      hint: 'names are exact and case-sensitive; a table outside the default search path needs its schema (--table schema.name)',
    },
  );
}

/** A partition as a pre-data script attaches it: `ALTER TABLE ONLY parent ATTACH PARTITION child bound;`. */
export interface PartitionAttachment {
  parent: { schema: string; name: string };
  partition: { schema: string; name: string };
  statement: string;
}

const IDENTIFIER = String.raw`(?:"(?:[^"]|"")+"|[^\s".;]+)`;
const ATTACH_STATEMENT = new RegExp(
  String.raw`^ALTER TABLE ONLY (${IDENTIFIER})\.(${IDENTIFIER}) ATTACH PARTITION (${IDENTIFIER})\.(${IDENTIFIER}) (?:FOR VALUES .*|DEFAULT);$`,
  'gm',
);

const OWNED_BY_STATEMENT = new RegExp(
  String.raw`^ALTER SEQUENCE (${IDENTIFIER})\.(${IDENTIFIER}) OWNED BY (${IDENTIFIER})\.(${IDENTIFIER})\.${IDENTIFIER};$`,
  'gm',
);

/** A pre-data script's partition attachments (pg_dump writes one per line) and sequences owned by tables. */
export interface PartitionLayout {
  attachments: PartitionAttachment[];
  ownedSequences: { sequence: { schema: string; name: string }; table: { schema: string; name: string } }[];
}

/** Pure: the partition layout of a pre-data script. */
export function partitionAttachments(script: string): PartitionLayout {
  const unquote = (identifier: string) => (identifier.startsWith('"') ? identifier.slice(1, -1).replaceAll('""', '"') : identifier);
  return {
    attachments: [...script.matchAll(ATTACH_STATEMENT)].map((match) => ({
      parent: { schema: unquote(match[1]), name: unquote(match[2]) },
      partition: { schema: unquote(match[3]), name: unquote(match[4]) },
      statement: match[0],
    })),
    ownedSequences: [...script.matchAll(OWNED_BY_STATEMENT)].map((match) => ({
      sequence: { schema: unquote(match[1]), name: unquote(match[2]) },
      table: { schema: unquote(match[3]), name: unquote(match[4]) },
    })),
  };
}

/**
 * Pure: a --table selection that names a partitioned table, widened to its partitions (and theirs,
 * for sub-partitions), and the attachments to run once they are restored. A partition in another
 * schema than the selection's adds that schema (pg_restore pairs --schema and --table by name).
 * The sequences those tables own come too: a partition's definition carries the column defaults
 * it inherits (a bigserial's nextval), which would not restore without them.
 */
export function withPartitions(
  selection: RestoreSelection,
  { attachments, ownedSequences }: PartitionLayout,
): { selection: RestoreSelection; attach: PartitionAttachment[] } {
  const schemas = [...(selection.schemas ?? [])];
  const tables = [...(selection.tables ?? [])];
  const selected = (table: { schema: string; name: string }) =>
    tables.includes(table.name) && (!schemas.length || schemas.includes(table.schema));
  const attach: PartitionAttachment[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const attachment of attachments) {
      if (attach.includes(attachment) || !selected(attachment.parent)) continue;
      attach.push(attachment);
      grew = true;
      if (!tables.includes(attachment.partition.name)) tables.push(attachment.partition.name);
      if (schemas.length && !schemas.includes(attachment.partition.schema)) schemas.push(attachment.partition.schema);
    }
  }
  if (attach.length) {
    for (const { sequence, table } of ownedSequences) {
      if (!selected(table) || tables.includes(sequence.name)) continue;
      tables.push(sequence.name);
      if (schemas.length && !schemas.includes(sequence.schema)) schemas.push(sequence.schema);
    }
  }
  return { selection: { ...selection, ...(schemas.length ? { schemas } : {}), tables }, attach };
}

/** --table [schema.]name and --schema name as pg_restore switches. */
export function selectionOf(request: Pick<LogicalRestoreRequest, 'table' | 'schema'>): RestoreSelection {
  const schemas: string[] = [];
  const tables: string[] = [];
  if (request.table) {
    const dot = request.table.indexOf('.');
    if (dot > 0) schemas.push(request.table.slice(0, dot));
    tables.push(dot > 0 ? request.table.slice(dot + 1) : request.table);
  }
  if (request.schema) {
    if (schemas.length && schemas[0] !== request.schema) {
      throw new RestoreTargetError(`--table '${request.table}' is not in --schema '${request.schema}'`);
    }
    if (!schemas.length) schemas.push(request.schema);
  }
  return { ...(schemas.length ? { schemas } : {}), ...(tables.length ? { tables } : {}) };
}

/** Views ordered so that each comes after every view it reads (a topological sort). */
export function dependencyOrder(views: readonly string[], edges: readonly { view: string; dependsOn: string }[]): string[] {
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (view: string) => {
    if (ordered.includes(view) || visiting.has(view)) return;
    visiting.add(view);
    for (const edge of edges) if (edge.view === view && views.includes(edge.dependsOn)) visit(edge.dependsOn);
    ordered.push(view);
  };
  for (const view of views) visit(view);
  return ordered;
}

function countUses(logical: LogicalBackupInfo): Map<string, number> {
  const uses = new Map<string, number>();
  for (const step of logical.steps) uses.set(step.artifact, (uses.get(step.artifact) ?? 0) + 1);
  return uses;
}

function findArtifact(manifest: BackupManifest, name: string): ArtifactRecord {
  const artifact = manifest.artifacts.find((candidate) => candidate.name === name);
  if (!artifact) throw new InvariantError(`backup '${manifest.id}' has a restore step for missing artifact '${name}'`);
  return artifact;
}

function databaseOf(url: string): string {
  const database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!database) throw new RestoreTargetError(`--target-url '${describePgUrl(url)}' names no database`);
  return database;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
