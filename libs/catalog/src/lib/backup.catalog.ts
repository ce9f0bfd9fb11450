import { ArtifactRecord, BackupManifest, BackupMethod, BackupType, TierName } from '@rookery/core';
import { DataSource, In, Not, Repository } from 'typeorm';
import { BackupRecordEntity } from './backup-record.entity';
import { CatalogDataSourceOptions, openCatalogDataSource } from './catalog-data-source.factory';
import { CatalogOutbox, OutboxItem } from './catalog.outbox';

export type BackupStatus = 'running' | 'completed' | 'failed';

/** A backup as the catalog serves it (GET /backups): the manifest's summary plus its run state. */
export interface BackupRecord {
  id: string;
  tier: TierName;
  type: BackupType;
  method: BackupMethod;
  status: BackupStatus;
  startedAt: string;
  finishedAt: string | null;
  startLsn: string | null;
  stopLsn: string | null;
  bytes: number | null;
  storedBytes: number | null;
  artifacts: ArtifactRecord[];
  error: string | null;
  requestedBy: string | null;
  /** The backup an incremental was taken against (the manifest's parent); null for a full and for a run without a manifest yet. */
  parent: string | null;
}

export interface BackupStart {
  id: string;
  tier: TierName;
  type: BackupType;
  method: BackupMethod;
  startedAt: string;
  requestedBy?: string;
}

export interface ReindexResult {
  indexed: number;
  /** Completed records whose manifest is no longer in the repository (expired or removed). */
  removed: number;
}

/**
 * The catalog: an index of the repository for fast listing and for backups in flight, never the
 * truth. Completed records are derived from manifests only, so `reindex` can rebuild a lost or
 * fresh catalog from the repository; `running` and `failed` records exist only here.
 */
export class BackupCatalog {
  private readonly records: Repository<BackupRecordEntity>;
  /** Events waiting for the bus; record* methods store theirs in the same transaction. */
  readonly outbox: CatalogOutbox;

  constructor(private readonly dataSource: DataSource) {
    this.records = dataSource.getRepository(BackupRecordEntity);
    this.outbox = new CatalogOutbox(dataSource);
  }

  /** Opens (and migrates) the catalog database at `url`. */
  static async open(url: string, options: CatalogDataSourceOptions = {}): Promise<BackupCatalog> {
    return new BackupCatalog(await openCatalogDataSource(url, options));
  }

  async recordStarted(start: BackupStart, events: readonly OutboxItem[] = []): Promise<BackupRecord> {
    const entity = this.records.create({
      id: start.id,
      tier: start.tier,
      type: start.type,
      method: start.method,
      status: 'running',
      startedAt: start.startedAt,
      finishedAt: null,
      startLsn: null,
      stopLsn: null,
      bytes: null,
      storedBytes: null,
      artifacts: '[]',
      error: null,
      requestedBy: start.requestedBy ?? null,
      parent: null,
    });
    await this.dataSource.transaction(async (manager) => {
      await manager.upsert(BackupRecordEntity, entity, ['id']);
      await CatalogOutbox.enqueue(manager, events);
    });
    return toRecord(entity);
  }

  /**
   * Records a committed manifest. `runningId` names the record the run started under when the
   * engine chose a different id; that placeholder is replaced by the manifest's record.
   */
  async recordCompleted(
    manifest: BackupManifest,
    options: { runningId?: string; requestedBy?: string; events?: readonly OutboxItem[] } = {},
  ): Promise<BackupRecord> {
    const previous = await this.records.findOneBy({ id: options.runningId ?? manifest.id });
    const entity = fromManifest(manifest, options.requestedBy ?? previous?.requestedBy ?? null);
    await this.dataSource.transaction(async (manager) => {
      if (options.runningId && options.runningId !== manifest.id) {
        await manager.delete(BackupRecordEntity, { id: options.runningId });
      }
      await manager.upsert(BackupRecordEntity, entity, ['id']);
      await CatalogOutbox.enqueue(manager, options.events ?? []);
    });
    return toRecord(entity);
  }

  async recordFailed(
    id: string,
    error: unknown,
    finishedAt = new Date(),
    events: readonly OutboxItem[] = [],
  ): Promise<BackupRecord | null> {
    const message = error instanceof Error ? error.message : String(error);
    await this.dataSource.transaction(async (manager) => {
      await manager.update(BackupRecordEntity, { id }, { status: 'failed', error: message, finishedAt: finishedAt.toISOString() });
      await CatalogOutbox.enqueue(manager, events);
    });
    return this.get(id);
  }

  /** Forgets a record that never became a backup (a request refused before it started). */
  async remove(id: string): Promise<void> {
    await this.records.delete({ id });
  }

  /** Marks `running` records of the tier as failed: after a restart, no run of this process survives. */
  async markInterrupted(tier: TierName, reason: string): Promise<number> {
    const result = await this.records.update(
      { tier, status: 'running' },
      { status: 'failed', error: reason, finishedAt: new Date().toISOString() },
    );
    return result.affected ?? 0;
  }

  /** Records of the tier (or all tiers), oldest first: newest last, as `rookery info` lists them. */
  async list(tier?: TierName): Promise<BackupRecord[]> {
    const entities = await this.records.find({
      where: tier ? { tier } : {},
      order: { startedAt: 'ASC', id: 'ASC' },
    });
    return entities.map(toRecord);
  }

  async get(id: string): Promise<BackupRecord | null> {
    const entity = await this.records.findOneBy({ id });
    return entity ? toRecord(entity) : null;
  }

  /**
   * Upserts every manifest read from the repository as a completed record. With `tier`, completed
   * records of that tier that have no manifest any more are removed, so the index matches the
   * repository; running and failed records are left alone (the repository knows nothing of them).
   */
  async reindex(manifests: readonly BackupManifest[], options: { tier?: TierName } = {}): Promise<ReindexResult> {
    return this.dataSource.transaction(async (manager) => {
      for (const manifest of manifests) {
        const existing = await manager.findOneBy(BackupRecordEntity, { id: manifest.id });
        await manager.upsert(BackupRecordEntity, fromManifest(manifest, existing?.requestedBy ?? null), ['id']);
      }
      let removed = 0;
      if (options.tier) {
        const ids = manifests.filter((manifest) => manifest.tier === options.tier).map((manifest) => manifest.id);
        const result = await manager.delete(BackupRecordEntity, {
          tier: options.tier,
          status: 'completed',
          ...(ids.length ? { id: Not(In(ids)) } : {}),
        });
        removed = result.affected ?? 0;
      }
      return { indexed: manifests.length, removed };
    });
  }

  /** Throws when the catalog database cannot answer (health checks). */
  async check(): Promise<void> {
    await this.dataSource.query('select 1');
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

function fromManifest(manifest: BackupManifest, requestedBy: string | null): BackupRecordEntity {
  return Object.assign(new BackupRecordEntity(), {
    id: manifest.id,
    tier: manifest.tier,
    type: manifest.type,
    method: manifest.method,
    status: 'completed',
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    startLsn: manifest.startLsn,
    stopLsn: manifest.stopLsn,
    bytes: manifest.bytes,
    storedBytes: manifest.storedBytes,
    artifacts: JSON.stringify(manifest.artifacts),
    error: null,
    requestedBy,
    parent: manifest.parent,
  });
}

function toRecord(entity: BackupRecordEntity): BackupRecord {
  return {
    id: entity.id,
    tier: entity.tier as TierName,
    type: entity.type as BackupType,
    method: entity.method as BackupMethod,
    status: entity.status as BackupStatus,
    startedAt: entity.startedAt,
    finishedAt: entity.finishedAt,
    startLsn: entity.startLsn,
    stopLsn: entity.stopLsn,
    bytes: entity.bytes,
    storedBytes: entity.storedBytes,
    artifacts: JSON.parse(entity.artifacts) as ArtifactRecord[],
    error: entity.error,
    requestedBy: entity.requestedBy,
    parent: entity.parent,
  };
}
