import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArtifactRecord, BackupManifest, TierName, isRookeryError } from '@rookery/core';
import { RookeryEngine, TABLESPACE_MAP_FILE, encryptionRefusal } from '@rookery/engine';
import { CHECK, ValidationCheck, allOk, checksumChecks, walContinuityCheck } from './validation-check';
import { ValidationTools } from './validation.tools';

/** Default wait for the backup's WAL to reach the archive: archive_timeout-scale, not forever. */
const WAL_WAIT_MS = 60_000;

export interface ValidationReport {
  backupId: string;
  tier: TierName;
  method: 'physical' | 'logical' | null;
  ok: boolean;
  checks: ValidationCheck[];
  validatedAt: string;
  durationMs: number;
}

export interface ValidateOptions {
  /** The manifest checksum the backup.completed event announced: the stored manifest must be that one. */
  manifestChecksum?: string;
  signal?: AbortSignal;
}

/**
 * Checks a backup as it lands (DESIGN §8), reading only the store:
 * 1. the manifest reads and passes its own checksum (and is the one the event announced);
 * 2. every artifact is re-read and its stored and decoded sha256 compared with the manifest
 *    (engine.verify, which also lists base backup tars);
 * 3. the format: a base backup is restored by the restore's own code (what `rookery restore`
 *    runs: fetch, decode, extract, pg_control held back until the end) into scratch space and
 *    checked there by pg_verifybackup against the backup_manifest pg_basebackup embedded in it,
 *    including a pg_waldump parse of the WAL in its pg_wal/ (pg_basebackup --wal-method=fetch
 *    puts exactly the WAL from start to stop LSN there, so nothing needs to be fetched from the
 *    archive and --no-parse-wal is not needed);
 *    a dump must give pg_restore --list a table of contents;
 * 4. for physical backups, WAL continuity from the backup's start to the newest archived segment.
 * A failed check never stops the others, except that format checks are not run on bytes that
 * failed their checksum: the report then says why they were not run.
 */
export class BackupValidator {
  constructor(
    private readonly engine: RookeryEngine,
    private readonly tools: ValidationTools,
    /** How long to wait for the archive to reach the backup's stop segment (archiving lags the backup). */
    private readonly walWaitMs = WAL_WAIT_MS,
  ) {}

  /**
   * WAL continuity from the backup's start. The backup's last segments are archived moments after
   * it ends (by archive_command or the WAL stream), so a missing tail is waited for (bounded)
   * before it counts as a gap: a lagging archiver is not a broken backup, a stalled one is.
   */
  private async walContinuity(tier: TierName, manifest: BackupManifest, signal?: AbortSignal): Promise<ValidationCheck> {
    const deadline = Date.now() + this.walWaitMs;
    for (;;) {
      const check = walContinuityCheck(manifest.id, await this.engine.walContinuity(tier));
      if (check.ok || Date.now() >= deadline || signal?.aborted) return check;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }

  async validate(tier: TierName, backupId: string, options: ValidateOptions = {}): Promise<ValidationReport> {
    const started = Date.now();
    const report = (method: ValidationReport['method'], checks: ValidationCheck[]): ValidationReport => ({
      backupId,
      tier,
      method,
      ok: allOk(checks),
      checks,
      validatedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
    });

    let manifest: BackupManifest;
    try {
      manifest = await this.engine.find(tier, backupId);
    } catch (error) {
      if (!isRookeryError(error)) throw error;
      return report(null, [{ name: CHECK.manifest, ok: false, detail: error.message }]);
    }
    const checks: ValidationCheck[] = [manifestCheck(manifest, options.manifestChecksum)];

    const verified = await this.engine.verify(tier, manifest.id, { signal: options.signal });
    checks.push(...checksumChecks(verified));
    const intact = verified.ok;

    if (manifest.method === 'physical') {
      checks.push(
        ...(intact ? await this.verifyBaseBackup(manifest, options.signal) : [notRun(CHECK.restoreExtraction), notRun(CHECK.verifybackup)]),
      );
      checks.push(await this.walContinuity(tier, manifest, options.signal));
    } else {
      for (const artifact of manifest.artifacts) {
        const name = CHECK.restoreList(artifact.name);
        checks.push(intact ? await this.listDump(manifest, artifact, options.signal) : notRun(name));
      }
    }
    return report(manifest.method, checks);
  }

  /**
   * Restores the base backup with the restore's own code (engine.restore, bare: no recovery
   * settings) into a scratch data directory, then runs pg_verifybackup on what it wrote: a defect
   * of the restore path (its extraction, the held-back pg_control, the files' owner) fails
   * validation instead of passing on a copy the restore never makes.
   */
  private async verifyBaseBackup(manifest: BackupManifest, signal?: AbortSignal): Promise<ValidationCheck[]> {
    const scratch = await mkdtemp(join(this.tools.workDirectory, 'rookery-validate-'));
    try {
      // Run as root, the restore extracts as the server's account: it must reach the data directory.
      await chmod(scratch, 0o711);
      const dataDirectory = join(scratch, 'data');
      const restored = await this.restoreInto(manifest, dataDirectory, signal);
      if (!restored.ok) return [restored, notRun(CHECK.verifybackup, 'the restore did not extract the backup')];
      return [restored, await this.pgVerifybackup(manifest, dataDirectory, signal)];
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private async restoreInto(manifest: BackupManifest, dataDirectory: string, signal?: AbortSignal): Promise<ValidationCheck> {
    try {
      // Every tablespace into the scratch directory too (pg_tblspc links there), never production's.
      const result = await this.engine.restore({
        tier: manifest.tier,
        backup: manifest.id,
        to: dataDirectory,
        tablespaces: { all: join(dirname(dataDirectory), 'tablespaces') },
        bare: true,
        signal,
      });
      return {
        name: CHECK.restoreExtraction,
        ok: true,
        detail: `${result.bytes} bytes restored into a scratch data directory in ${result.timings.extractMs} ms`,
      };
    } catch (error) {
      if (!isRookeryError(error)) throw error;
      return { name: CHECK.restoreExtraction, ok: false, detail: error.message };
    }
  }

  private async pgVerifybackup(manifest: BackupManifest, dataDirectory: string, signal?: AbortSignal): Promise<ValidationCheck> {
    try {
      // The restore replaced tablespace_map with pg_tblspc links to the scratch directory (after
      // checking it lists the manifest's tablespaces): the files behind the links are verified.
      const result = await this.tools.verifybackup.verify(dataDirectory, { ignore: [TABLESPACE_MAP_FILE], signal });
      return result.ok
        ? {
            name: CHECK.verifybackup,
            ok: true,
            detail: `backup_manifest and WAL ${manifest.walRange?.start ?? ''}..${manifest.walRange?.stop ?? ''} verified`,
          }
        : { name: CHECK.verifybackup, ok: false, detail: result.problems.slice(0, 5).join('; ') };
    } catch (error) {
      if (!isRookeryError(error)) throw error;
      return { name: CHECK.verifybackup, ok: false, detail: error.message };
    }
  }

  /** pg_restore --list over the decoded dump as it streams (custom) or its table of contents (directory, tarred). */
  private async listDump(manifest: BackupManifest, artifact: ArtifactRecord, signal?: AbortSignal): Promise<ValidationCheck> {
    const name = CHECK.restoreList(artifact.name);
    // Refused before pg_restore starts: it would wait for bytes that never come.
    const refusal = encryptionRefusal(manifest, artifact, this.engine.requiresEncryption);
    if (refusal) return { name, ok: false, detail: refusal.message };
    const controller = new AbortController();
    const combined = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const listing =
      manifest.logical?.format === 'directory'
        ? this.tools.restore.listTarStream({ signal: combined, workDirectory: this.tools.workDirectory })
        : this.tools.restore.listStream({ signal: combined });
    try {
      // Both sides are waited for, and the failure that explains the other is the one reported
      // (the store's reset, not the listing's abort; pg_restore's own error, not a broken pipe).
      const entries = await this.engine.readArtifact(
        manifest,
        artifact,
        { sink: listing.sink, result: listing.result, abort: (reason) => controller.abort(reason) },
        { signal },
      );
      if (entries.length === 0) return { name, ok: false, detail: `artifact '${artifact.name}': pg_restore lists no entries` };
      const data = entries.filter((entry) => entry.type === 'TABLE DATA').length;
      return { name, ok: true, detail: `${entries.length} entries, ${data} with table data` };
    } catch (error) {
      if (!isRookeryError(error)) throw error;
      return { name, ok: false, detail: `artifact '${artifact.name}': ${error.message}` };
    }
  }
}

function manifestCheck(manifest: BackupManifest, announced: string | undefined): ValidationCheck {
  if (announced && announced !== manifest.checksum) {
    return {
      name: CHECK.manifest,
      ok: false,
      detail: `the stored manifest of '${manifest.id}' has checksum ${manifest.checksum}, the backup.completed event announced ${announced}`,
    };
  }
  return { name: CHECK.manifest, ok: true, detail: `${manifest.artifacts.length} artifacts, checksum ${manifest.checksum.slice(0, 12)}` };
}

function notRun(name: string, reason = 'an artifact failed its checksum'): ValidationCheck {
  return { name, ok: false, detail: `not run: ${reason}` };
}
