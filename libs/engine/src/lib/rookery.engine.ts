import {
  ArtifactRecord,
  BackupManifest,
  Store,
  BackupType,
  IntegrityError,
  LegalHold,
  RecoveryWindow,
  TierName,
  isTierName,
  TIER_NAMES,
  UnknownTierError,
  WalContinuityReport,
} from '@rookery/core';
import type { RookeryConfig } from '@rookery/config';
import { BackupListing } from '@rookery/repository';
import { ArtifactConsumer, readArtifactInto } from './artifact.codec';
import { allocateBackupId } from './backup-ids';
import { BackupLifecycleSink, BackupRun, BackupRunOptions, BackupRunPorts, BackupRunRequest } from './backup-run';
import { BackupVerifyService, VerifyResult } from './backup-verify.service';
import { EngineContext } from './engine.context';
import { ManifestSigning, ManifestSigningService } from './manifest-signing.service';
import { LatestBackupService, LatestRestoreRequest } from './latest-backup.service';
import { LogicalBackupService } from './logical-backup.service';
import { LogicalRestoreRequest, LogicalRestoreResult, LogicalRestoreService } from './logical-restore.service';
import { logicalToolsOf } from './logical-tools';
import type { PostgresToolkit } from '@rookery/postgres';
import { ProgressListener } from './engine.progress';
import type { PostgresTools } from './postgres.tools';
import { PhysicalBackupService } from './physical-backup.service';
import { PhysicalRestoreRequest, PhysicalRestoreResult, PhysicalRestoreService } from './physical-restore.service';
import { RecoveryPlanService } from './recovery-plan.service';
import { ReplicationRun, ReplicationService, ReplicationStatus, replicaRegionsFor } from './replication.service';
import { ArchiveRestoreOptions, ObjectLockStatus, StorageClassService, TransitionReport } from './storage-class.service';
import { ExpireRequest, ExpireResult, RetentionService } from './retention.service';
import {
  WalFileVerification,
  encryptionRequired,
  WalGetResult,
  WalPushResult,
  WalService,
  WalStreamSource,
  stopPrefetcher,
} from '@rookery/wal';

/** `engine.backup()`: a run without a lifecycle sink, by the engine's actor. */
export type BackupRequest = Omit<BackupRunRequest, 'actor' | 'type'> & { type?: BackupType } & BackupRunOptions;

/**
 * The one entry point the CLI and the services share: the same code takes, lists, verifies and
 * restores backups whoever calls it.
 */
export class RookeryEngine {
  private readonly physicalBackup: PhysicalBackupService;
  private readonly physicalRestore: PhysicalRestoreService;
  private readonly verifier: BackupVerifyService;
  readonly wal: WalService;
  private readonly recovery: RecoveryPlanService;
  readonly replication: ReplicationService;
  readonly storageClasses: StorageClassService;
  private readonly logicalBackup: LogicalBackupService;
  private readonly logicalRestore: LogicalRestoreService;
  private readonly retention: RetentionService;
  private readonly latest: LatestBackupService;
  private readonly backupPorts: BackupRunPorts;
  /** Ids this engine named in the current second, per tier: taken for the next run's name. */
  private readonly namedThisSecond = new Map<TierName, { second: string; ids: Set<string> }>();

  constructor(
    readonly context: EngineContext,
    /**
     * The process's one PostgreSQL toolkit: the engine's PostgresTools and logical tools are
     * built on it, and the libs composed beside the engine (the WAL stream, validation) take
     * their parts from it instead of building a second one.
     */
    readonly toolkit: PostgresToolkit,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {
    this.physicalBackup = new PhysicalBackupService(context);
    this.wal = new WalService(context);
    this.physicalRestore = new PhysicalRestoreService(context, this.wal);
    this.recovery = new RecoveryPlanService(context, this.wal);
    this.replication = new ReplicationService(context);
    this.storageClasses = new StorageClassService(context);
    const logicalTools = logicalToolsOf(toolkit);
    this.logicalBackup = new LogicalBackupService(context, logicalTools);
    this.logicalRestore = new LogicalRestoreService(context, logicalTools);
    this.verifier = new BackupVerifyService(context, logicalTools);
    this.retention = new RetentionService(context, this.wal, this.recovery);
    this.latest = new LatestBackupService(context, this.verifier, this.recovery);
    this.backupPorts = {
      policy: (tier) => context.config.tiers[tier].policy,
      repository: context.repository.store.description,
      name: (tier, startedAt, requested) => this.nameBackup(tier, startedAt, requested),
      take: (request) =>
        context.config.tiers[request.tier].policy.method === 'logical'
          ? this.logicalBackup.backup(request)
          : this.physicalBackup.backup(request),
    };
  }

  /** The validated configuration the engine was built from (read only). */
  get config(): RookeryConfig {
    return this.context.config;
  }

  /** The primary store: its check, listing and description (health, DR, messages). */
  get store(): Store {
    return this.context.repository.store;
  }

  /** Where an artifact of a backup lies in the primary store. */
  artifactKey(manifest: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>, artifact: string): string {
    return this.context.repository.artifactKey(manifest, artifact);
  }

  /** Whether artifacts must be encrypted (a key is configured): a plain one is refused, never read. */
  get requiresEncryption(): boolean {
    return encryptionRequired(this.context.encoding);
  }

  /**
   * Reads a backup's artifact from the primary store, decrypted, decompressed and checked on the
   * way, into a consumer (a pg_restore --list): its verdict, or the error that explains the other.
   */
  readArtifact<T>(
    manifest: BackupManifest,
    artifact: ArtifactRecord,
    consumer: ArtifactConsumer<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const { repository, encoding } = this.context;
    return readArtifactInto(repository.store, manifest, artifact, repository.artifactKey(manifest, artifact.name), consumer, {
      keyMaterial: encoding.key?.material ?? null,
      requireEncryption: encryptionRequired(encoding),
      signal: options.signal,
    });
  }

  /**
   * Whether a physical restore writes recovery settings (a restore_command that runs this
   * rookery, archive_mode): only an engine built with a selfCommand (see EngineOptions) does.
   */
  get writesRecoverySettings(): boolean {
    return this.context.selfCommand !== undefined;
  }

  /**
   * The postgres account (uid, gid) when rookery runs as root: servers, and the files they read,
   * run as it (PostgreSQL refuses root); null otherwise.
   */
  postgresAccount(): Promise<{ uid: number; gid: number } | null> {
    return this.context.postgres.osUser();
  }

  /** Starts the server of a restored data directory (see PostgresTools.startRestored); resolves with its port. */
  startRestored(dataDirectory: string, options: Parameters<PostgresTools['startRestored']>[1]): Promise<number> {
    return this.context.postgres.startRestored(dataDirectory, options);
  }

  /** Whether the server of a restored data directory runs. */
  isRestoredRunning(dataDirectory: string): Promise<boolean> {
    return this.context.postgres.isRunning(dataDirectory);
  }

  /**
   * A backup run of the tier (see BackupRun): the requested type is checked here (ConfigError,
   * nothing reported); start() names it, finish() takes it by the tier's policy method
   * (pg_basebackup, or shaped pg_dumps), each step reported to `lifecycle`.
   */
  backupRun(request: BackupRunRequest, lifecycle?: BackupLifecycleSink): BackupRun {
    requireTier(request.tier);
    return new BackupRun(this.backupPorts, request, lifecycle);
  }

  /** A backup by the tier's policy method, reported to no one (the CLI and services use backupRun). */
  async backup(request: BackupRequest): Promise<BackupManifest> {
    const { signal, onProgress, onWarning, ...named } = request;
    const run = this.backupRun({ ...named, actor: this.context.actor });
    await run.start();
    return run.finish({ signal, onProgress, onWarning });
  }

  /**
   * A new backup's id. A store that cannot be listed names it after its start time alone: the
   * backup then fails at its own store check, with its own message (and checks its id again once
   * it holds the tier lock).
   */
  private nameBackup(tier: TierName, startedAt: Date, requested?: string): Promise<string> {
    const second = startedAt.toISOString().slice(0, 19);
    let named = this.namedThisSecond.get(tier);
    if (named?.second !== second) this.namedThisSecond.set(tier, (named = { second, ids: new Set() }));
    const repository = this.context.repository;
    const listed = { backupIdsInUse: (of: TierName) => repository.backupIdsInUse(of).catch(() => new Set<string>()) };
    return allocateBackupId(listed, tier, startedAt, requested, named.ids);
  }

  /** Restores into a database (targetUrl: logical backups) or a data directory (to: physical). */
  restore(request: LogicalRestoreRequest, options?: { archive?: ArchiveRestoreOptions }): Promise<LogicalRestoreResult>;
  restore(request: PhysicalRestoreRequest, options?: { archive?: ArchiveRestoreOptions }): Promise<PhysicalRestoreResult>;
  async restore(
    request: PhysicalRestoreRequest | LogicalRestoreRequest,
    options: { archive?: ArchiveRestoreOptions } = {},
  ): Promise<PhysicalRestoreResult | LogicalRestoreResult> {
    requireTier(request.tier);
    await this.refuseUntrusted(request);
    const chain = await this.backupsToRead(request);
    // `latest` restores the newest backup or fails naming the newest one that verifies, never an
    // older one in silence: cheap checks before anything is written, the byte checks while it
    // streams. The restore is pinned to the backup checked (a backup committed meanwhile waits).
    const latest = request.backup === 'latest' && chain.length > 0 ? latestRequest(request) : null;
    if (latest) await this.latest.preflight(latest, chain);
    const pinned = latest ? { ...request, backup: chain[0].id } : request;
    // Archived artifacts (GLACIER, DEEP_ARCHIVE) are thawed first, or the restore stops here
    // saying how long that takes, instead of failing halfway through a download.
    await this.storageClasses.ensureReadable(chain, { signal: request.signal, ...options.archive });
    try {
      if ('targetUrl' in pinned) return await this.logicalRestore.restore(pinned);
      return await this.physicalRestore.restore(pinned);
    } catch (error) {
      throw latest ? await this.latest.explain(latest, chain[0], error) : error;
    }
  }

  /** Copies what each replica region lacks (or holds damaged, with verify) of the tier's backups and WAL. */
  replicate(tier: TierName, options: { verify?: boolean; signal?: AbortSignal } = {}): Promise<ReplicationRun> {
    requireTier(tier);
    return this.replication.replicate(tier, options);
  }

  /** Copy status of each backup per region and each region's WAL lag. */
  replicationStatus(tier: TierName): Promise<ReplicationStatus> {
    requireTier(tier);
    return this.replication.status(tier);
  }

  /** Moves artifacts to colder storage classes by age per the tier's policy transitions. */
  transition(tier: TierName, options: { dryRun?: boolean; now?: Date } = {}): Promise<TransitionReport> {
    requireTier(tier);
    return this.storageClasses.transition(tier, options);
  }

  /** Whether each store of the tier (primary, replicas) can lock objects, and why not. */
  objectLockStatus(tier: TierName): Promise<ObjectLockStatus[]> {
    requireTier(tier);
    const primary = { region: this.context.config.tiers[tier].policy.regions[0] ?? 'primary', store: this.context.repository.store };
    return this.storageClasses.objectLock([primary, ...this.replication.targets(replicaRegionsFor(this.context.config, tier))]);
  }

  /**
   * A backup whose manifest is in the repository but cannot be trusted (damaged, unsigned where
   * signatures are required, forged) is refused first, naming why, rather than reported as not
   * found or planned around; so is `latest` when only such manifests are there.
   */
  private async refuseUntrusted(request: PhysicalRestoreRequest | LogicalRestoreRequest): Promise<void> {
    await this.context.repository.find(request.tier, request.backup).catch((error: unknown) => {
      if (error instanceof IntegrityError) throw error;
    });
  }

  /** The backup a restore reads and every parent it applies first. */
  private async backupsToRead(request: PhysicalRestoreRequest | LogicalRestoreRequest): Promise<BackupManifest[]> {
    // As the physical restore chooses: planned (recovery settings) whenever it can write them.
    const physicalTarget =
      'targetUrl' in request || request.bare
        ? undefined
        : (request.target ?? (this.context.selfCommand ? { kind: 'latest' as const } : undefined));
    const chosen = physicalTarget
      ? await this.recovery.plan(request.tier, physicalTarget, request.backup).then(
          (plan) => plan.backup,
          () => null,
        )
      : await this.context.repository.find(request.tier, request.backup).catch(() => null);
    // An unknown backup or refused target is reported by the restore itself, with its own message.
    if (!chosen) return [];
    const { backups } = await this.context.repository.list(request.tier);
    const chain = [chosen];
    for (let parent = chosen.parent; parent; ) {
      const found = backups.find((backup) => backup.id === parent);
      if (!found) break;
      chain.push(found);
      parent = found.parent;
    }
    return chain;
  }

  verify(tier: TierName, backup: string, options: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<VerifyResult> {
    requireTier(tier);
    return this.verifier.verify(tier, backup, options);
  }

  /** `rookery repository sign`: signs the tier's unsigned manifests whose backups verify. */
  signManifests(tier: TierName, options: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<ManifestSigning[]> {
    requireTier(tier);
    return new ManifestSigningService(this.context, this.verifier).signTier(tier, options);
  }

  /** archive_command: stores one WAL file from pg_wal; resolves once it is durable. */
  walPush(tier: TierName, path: string, options: { signal?: AbortSignal } = {}): Promise<WalPushResult> {
    requireTier(tier);
    return this.wal.push(tier, path, options);
  }

  /** restore_command: fetches, verifies and lands one WAL file at `destination`. */
  walGet(tier: TierName, name: string, destination: string, options: { signal?: AbortSignal } = {}): Promise<WalGetResult> {
    requireTier(tier);
    return this.wal.get(tier, name, destination, options);
  }

  /** What the queue tier's WAL stream (createWalStreamSupervisor of @rookery/wal) takes from this engine. */
  walStreamSource(): WalStreamSource {
    return { config: this.context.config, tools: this.toolkit, wal: this.wal, osUser: () => this.context.postgres.osUser() };
  }

  /** WAL continuity of the tier's archive from each backup (`rookery verify --wal`). */
  walContinuity(tier: TierName): Promise<WalContinuityReport> {
    requireTier(tier);
    return this.recovery.continuity(tier);
  }

  /** Every archived WAL file of the tier re-read, decrypted and checked (`rookery verify --wal --deep`). */
  verifyWalArchive(tier: TierName, options: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<WalFileVerification[]> {
    requireTier(tier);
    return this.wal.verifyArchive(tier, options);
  }

  /** The recoverable window of a tier: usable backups and how far each reaches. */
  async recoveryWindow(tier: TierName): Promise<RecoveryWindow> {
    requireTier(tier);
    return (await this.recovery.window(tier)).window;
  }

  /** Where WAL archiving of a tier stands: newest archived segment, archiver lag, RPO exposure. */
  walStatus(tier: TierName) {
    requireTier(tier);
    return this.wal.archiver.status(tier);
  }

  /**
   * Deletes what the tier's retention policy no longer keeps (backups, the WAL no retained backup
   * needs, folders of crashed runs) under the tier lock; with dryRun, only plans.
   */
  expire(request: ExpireRequest): Promise<ExpireResult> {
    requireTier(request.tier);
    return this.retention.expire(request);
  }

  /**
   * Legal holds: a held backup is never expired, whatever its age. `heldBy` names who placed it
   * (a service passes its caller); default: this engine's actor on this host.
   */
  hold(tier: TierName, backupId: string, reason: string, heldBy?: string): Promise<LegalHold> {
    requireTier(tier);
    return this.retention.hold(tier, backupId, reason, heldBy);
  }

  releaseHold(tier: TierName, backupId: string): Promise<LegalHold> {
    requireTier(tier);
    return this.retention.release(tier, backupId);
  }

  holds(tier: TierName): Promise<LegalHold[]> {
    requireTier(tier);
    return this.retention.holds.list(tier);
  }

  /**
   * Stops a server that restore({ start: true }) started, and the WAL prefetcher its
   * restore_command started: once this returns, nothing of the restore writes into the directory.
   */
  async stopRestored(dataDirectory: string): Promise<void> {
    if (await this.context.postgres.isRunning(dataDirectory)) await this.context.postgres.stopRestored(dataDirectory);
    await stopPrefetcher(dataDirectory);
  }

  list(tier?: TierName): Promise<BackupListing> {
    if (tier) requireTier(tier);
    return this.context.repository.list(tier);
  }

  find(tier: TierName, backup: string): Promise<BackupManifest> {
    requireTier(tier);
    return this.context.repository.find(tier, backup);
  }

  async close(): Promise<void> {
    await this.replication.close();
    return this.onClose();
  }
}

function requireTier(tier: string): asserts tier is TierName {
  if (!isTierName(tier)) throw new UnknownTierError(tier, TIER_NAMES);
}

function latestRequest(request: PhysicalRestoreRequest | LogicalRestoreRequest): LatestRestoreRequest {
  if ('targetUrl' in request) return { tier: request.tier, method: 'logical' };
  return { tier: request.tier, method: 'physical', target: request.target };
}
