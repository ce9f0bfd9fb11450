import { finished } from 'node:stream/promises';
import { BackupManifest, ConfigError, IncrementalChainError, InvariantError, TierName } from '@rookery/core';
import { PgSession } from '@rookery/postgres';
import type { ServerFacts } from './postgres.tools';
import { artifactFileName, writeArtifact } from './artifact.codec';
import { LogicalBackupJob, LogicalReadOutcome, readArtifactBack } from './logical-backup.job';
import {
  TRACKING_TABLE_DATA,
  TrackedTable,
  captureFunctionDefinition,
  checkChainable,
  ensureChangeTracking,
  layoutObstacles,
  listTrackedTables,
  readTrackingPoint,
  recordedPoint,
  summarizeChanges,
} from './logical-change-tracking';
import { ChangesetCheck, ChangesetLayout, changesetStream, readSequences } from './logical-changeset';
import { CatalogRelation, LayoutPlan, tableScriptPhases } from './logical-partition-layout';
import { EngineContext } from './engine.context';
import { LogicalTools } from './logical-tools';

/**
 * A content incremental: the rows changed since the parent (the tier's newest backup, full or
 * incremental), read from one exported snapshot, as a changeset artifact (see logical-changeset).
 * A partition layout change since the parent (partitions attached, detached, created, dropped)
 * is followed: the changeset carries that DDL and those tables' rows whole (logical-change-tracking).
 * Refused, with the way out (a full) in the hint, when there is no parent, the parent is not
 * chainable (no tracking, another server), the schema changed otherwise, or the change log no
 * longer covers the time since the parent. The artifact is read back and checked before the
 * manifest commits.
 */
export class LogicalIncrementalService {
  constructor(
    private readonly context: EngineContext,
    private readonly tools: () => Promise<LogicalTools>,
  ) {}

  async read(job: LogicalBackupJob, server: ServerFacts): Promise<LogicalReadOutcome> {
    const { repository } = this.context;
    const { tier } = job.request;
    const database = this.context.config.tiers[tier].policy.database;
    if (job.policy.excludeTableData.length) {
      throw new ConfigError(
        `tier '${tier}' excludes table data (${job.policy.excludeTableData.join(', ')}); an incremental would carry those rows`,
        ['policy.logical.incremental'],
      );
    }
    const tools = await this.tools();
    const parent = await this.parentOf(tier, server);
    const parentPoint = parent.logical?.changeTracking;
    // A table with no trigger yet (a partition created since the parent) gets them now, committed
    // before the snapshot, as a full does: every change after the snapshot is then logged.
    await ensureChangeTracking(tools.sql, job.url, { newTablesOnly: true });

    return tools.sql.withSession(job.url, async (session) => {
      await session.query('begin transaction isolation level repeatable read, read only');
      const [{ snapshot }] = await session.query<{ snapshot: string }>('select pg_export_snapshot() as snapshot');
      const point = await readTrackingPoint(session, () => tools.dump.schemaScript({ url: job.url, snapshot, signal: job.request.signal }));
      const plan = checkChainable({ id: parent.id, point: parentPoint }, point, database, tier);
      const parentSnapshot = (parentPoint as NonNullable<typeof parentPoint>).snapshot;
      const tables = await listTrackedTables(session);
      const layout = plan.changes.length ? await this.layoutOf(job, session, snapshot, plan, tables, point.catalog.tables) : undefined;
      if (layout)
        job.request.onWarning?.(
          `the partitions changed since backup '${parent.id}': ${layout.changes.join('; ')}; the incremental follows`,
        );

      const changeset = changesetStream(tools.dump, {
        url: job.url,
        snapshot,
        parentSnapshot,
        tables,
        changes: await summarizeChanges(session, parentSnapshot),
        sequences: await readSequences(session),
        describe: { backup: job.id, parent: parent.id },
        layout,
        signal: job.request.signal,
      });
      const name = artifactFileName('changes.sql', job.encoding);
      const key = repository.artifactKey({ tier, id: job.id, startedAt: job.startedAt.toISOString() }, name);
      const artifact = await writeArtifact(repository.store, key, changeset.stream, {
        name,
        kind: 'changeset',
        backup: { tier, id: job.id },
        encoding: job.encoding,
        storageClass: this.context.config.tiers[tier].policy.storageClass,
        signal: job.request.signal,
        onLogicalBytes: (bytes) => job.request.onProgress?.({ phase: 'backup', artifact: name, bytes }),
      });
      await session.query('commit');

      const carried = changeset.info();
      await readArtifactBack(this.context, job.request, job, artifact, key, () => {
        const sink = new ChangesetCheck(name, carried);
        return { sink, result: finished(sink) };
      });
      return {
        artifacts: [artifact],
        parent: parent.id,
        info: {
          format: job.policy.format,
          steps: [],
          excludedTableData: [...TRACKING_TABLE_DATA],
          materializedViews: [],
          snapshot,
          changeTracking: recordedPoint(point),
          changes: { artifact: name, ...carried },
        },
      };
    });
  }

  /**
   * The layout DDL of a changeset: refused (naming why) if a table to recreate cannot be; each
   * recreated table's definition read by pg_dump at the incremental's snapshot.
   */
  private async layoutOf(
    job: LogicalBackupJob,
    session: PgSession,
    snapshot: string,
    plan: LayoutPlan,
    tables: readonly TrackedTable[],
    relations: readonly CatalogRelation[],
  ): Promise<ChangesetLayout> {
    const obstacles = await layoutObstacles(session, plan, tables);
    if (obstacles.length) {
      throw new IncrementalChainError(
        `the partitions of database '${this.context.config.tiers[job.request.tier].policy.database}' changed (${plan.changes.join('; ')}) in a way an incremental cannot follow: ${obstacles.join('; ')}`,
        { hint: `take a full backup: rookery backup --tier ${job.request.tier} --type full` },
      );
    }
    const tools = await this.tools();
    const recreate: ChangesetLayout['recreate'] = [];
    for (const table of plan.recreate) {
      const relation = relations.find((candidate) => candidate.table === table);
      if (!relation) throw new InvariantError(`table ${table} to recreate is not in the catalog read at the snapshot`);
      const script = await tools.dump.schemaScript({ url: job.url, snapshot, tables: [relation], signal: job.request.signal });
      recreate.push({ table, ...tableScriptPhases(script) });
    }
    const functions = tables
      .filter((table) => plan.recreate.includes(table.name))
      .map(captureFunctionDefinition)
      .filter((definition): definition is string => definition !== null);
    return { changes: plan.changes, drop: plan.drop, recreate, functions };
  }

  /** The tier's newest backup, which must lead back to a full of this same server. */
  private async parentOf(tier: TierName, server: ServerFacts): Promise<BackupManifest> {
    const { backups } = await this.context.repository.list(tier);
    const full = `take a full backup first: rookery backup --tier ${tier} --type full`;
    const parent = backups.at(-1);
    if (!parent) throw new IncrementalChainError(`tier '${tier}' has no backup to chain an incremental to`, { hint: full });
    if (parent.postgres.systemIdentifier !== server.systemIdentifier) {
      throw new IncrementalChainError(
        `the newest backup of tier '${tier}', '${parent.id}', is of another server (system identifier ${parent.postgres.systemIdentifier}, this one is ${server.systemIdentifier})`,
        { hint: full },
      );
    }
    resolveChain(backups, parent);
    return parent;
  }
}

/**
 * The chain that restores `backup`: its full first, then each incremental in order. Every link
 * must be in the listing; a missing one is named.
 */
export function resolveChain(backups: readonly BackupManifest[], backup: BackupManifest): BackupManifest[] {
  const chain = [backup];
  while (chain[0].type === 'incremental') {
    const child = chain[0];
    const parent = backups.find((candidate) => candidate.id === child.parent);
    if (!parent) {
      throw new IncrementalChainError(`backup '${child.id}' chains to backup '${child.parent}', which is not in the repository`, {
        hint: `the chain of '${child.id}' is broken; restore an earlier backup or take a new full backup`,
      });
    }
    if (chain.length > backups.length) throw new IncrementalChainError(`the chain of backup '${backup.id}' loops`);
    chain.unshift(parent);
  }
  return chain;
}
