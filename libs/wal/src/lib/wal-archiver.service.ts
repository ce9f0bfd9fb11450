import {
  ArchiveCheckError,
  ConfigError,
  DEFAULT_WAL_SEGMENT_SIZE,
  TierName,
  WalFileName,
  parseLsn,
  parseWalFileName,
  walSegmentNumberOf,
  walSegmentStartLsn,
} from '@rookery/core';
import { PgSqlClient } from '@rookery/postgres';
import { WalArchive, WalObject } from '@rookery/repository';
import { WalContext } from './wal.context';

export interface WalCheckResult {
  tier: TierName;
  /** The segment the check switched out and found in the repository. */
  segment: string;
  key: string;
  /** Seconds from the switch to the segment being in the repository. */
  seconds: number;
  archiveCommand: string;
}

export interface WalArchiverStatistics {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedAt: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
}

/**
 * Where WAL archiving of a tier stands (DESIGN §2 RPO): the newest segment in the repository and,
 * when the tier's server answers, how far the archive is behind it. `exposure` is what a loss of
 * the server now would cost: WAL written since the end of the newest archived segment.
 */
export interface WalStatus {
  tier: TierName;
  /** The newest archived segment (highest timeline, then name); the repository is the truth. */
  lastArchived: { name: string; timeline: number; archivedAt: string; key: string } | null;
  archivedFiles: number;
  server: {
    archiveMode: string;
    timeline: number;
    currentLsn: string;
    currentSegment: string;
    /** Complete segments the server has not archived yet (pg_stat_archiver's view). */
    lagSegments: number | null;
    archiver: WalArchiverStatistics;
  } | null;
  /** Why `server` is null: no pgUrl configured, or the error connecting. */
  serverProblem: string | null;
  exposure: { seconds: number; bytes: number } | null;
}

interface ServerRow extends Record<string, unknown> {
  archive_mode: string;
  archive_command: string;
  in_recovery: boolean;
  lsn: string | null;
  segment: string | null;
  timeline: number;
  segment_size: string;
  archived_count: string;
  last_archived_wal: string | null;
  last_archived_time: Date | null;
  failed_count: string;
  last_failed_wal: string | null;
  last_failed_time: Date | null;
}

const SERVER_QUERY = `
  select current_setting('archive_mode') as archive_mode,
         current_setting('archive_command') as archive_command,
         pg_is_in_recovery() as in_recovery,
         case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end as lsn,
         case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end as segment,
         (select timeline_id from pg_control_checkpoint()) as timeline,
         (select setting from pg_settings where name = 'wal_segment_size') as segment_size,
         a.archived_count::text, a.last_archived_wal, a.last_archived_time,
         a.failed_count::text, a.last_failed_wal, a.last_failed_time
    from pg_stat_archiver a`;

const POLL_MS = 200;

/**
 * `rookery check` and WAL status: what the tier's server says about archiving, held against what
 * is in the repository. SQL goes through @rookery/postgres; nothing here changes the server
 * except the WAL switch (and restore point) the check forces.
 */
export class WalArchiverService {
  private readonly sql = new PgSqlClient({ applicationName: 'rookery check', connectTimeoutMs: 5_000 });
  private readonly archive: WalArchive;

  constructor(private readonly context: Pick<WalContext, 'config' | 'repository'>) {
    this.archive = new WalArchive(context.repository.store);
  }

  /**
   * Like `pgbackrest check`: archive_mode on, archive_command runs rookery wal-push for this tier,
   * then a forced WAL switch whose segment must reach the repository within the timeout.
   */
  async check(tier: TierName, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<WalCheckResult> {
    const url = this.pgUrl(tier);
    const [server] = await this.sql.query<ServerRow>(url, SERVER_QUERY);
    const command = redactCommand(server.archive_command);
    if (server.in_recovery && server.archive_mode !== 'always') {
      throw new ArchiveCheckError(
        `the server of tier '${tier}' is in recovery and archive_mode is '${server.archive_mode}': it archives nothing`,
        {
          hint: 'run the check against the primary',
        },
      );
    }
    if (server.archive_mode === 'off') {
      throw new ArchiveCheckError(`archive_mode is off on the server of tier '${tier}'`, {
        hint: `set archive_mode = on and archive_command = 'rookery wal-push %p --tier ${tier} …', then restart the server`,
      });
    }
    if (!runsWalPushFor(server.archive_command, tier)) {
      throw new ArchiveCheckError(
        `archive_command of the server of tier '${tier}' does not run rookery wal-push for this tier: '${command}'`,
        {
          hint: `set archive_command = 'rookery wal-push %p --tier ${tier} …' and reload the server`,
        },
      );
    }

    const started = Date.now();
    const segment = await this.switchSegment(url);
    const file = parseWalFileName(segment) as WalFileName;
    const deadline = started + (options.timeoutMs ?? 60_000);
    for (;;) {
      const [found] = await this.archive.versions(tier, file);
      if (found) return { tier, segment, key: found.key, seconds: (Date.now() - started) / 1000, archiveCommand: command };
      if (Date.now() > deadline || options.signal?.aborted) break;
      await new Promise((done) => setTimeout(done, POLL_MS));
    }
    const [after] = await this.sql.query<ServerRow>(url, SERVER_QUERY);
    const failing = after.last_failed_wal && after.last_failed_time && after.last_failed_time.getTime() >= started - 1000;
    throw new ArchiveCheckError(
      `WAL segment '${segment}' of tier '${tier}' did not reach the repository within ${Math.round((deadline - started) / 1000)} s` +
        (failing ? ` (archive_command failed on '${after.last_failed_wal}' at ${after.last_failed_time?.toISOString()})` : ''),
      {
        hint: failing
          ? 'the server log has the output of the failing archive_command'
          : `check that archive_command writes to this repository (${this.context.repository.store.description})`,
      },
    );
  }

  async status(tier: TierName): Promise<WalStatus> {
    const archived = await this.archive.list(tier);
    const last = newestSegment(archived);
    const status: WalStatus = {
      tier,
      lastArchived: last
        ? { name: last.file.name, timeline: last.file.timeline, archivedAt: last.archivedAt.toISOString(), key: last.key }
        : null,
      archivedFiles: archived.length,
      server: null,
      serverProblem: null,
      exposure: null,
    };
    const url = this.context.config.tiers[tier].pgUrl?.reveal();
    if (!url) return { ...status, serverProblem: `no database URL configured for tier '${tier}'` };
    let row: ServerRow;
    try {
      [row] = await this.sql.query<ServerRow>(url, SERVER_QUERY);
    } catch (error) {
      return { ...status, serverProblem: error instanceof Error ? error.message : String(error) };
    }
    const segmentSize = Number(row.segment_size) || DEFAULT_WAL_SEGMENT_SIZE;
    const currentLsn = row.lsn ? parseLsn(row.lsn) : null;
    status.server = {
      archiveMode: row.archive_mode,
      timeline: Number(row.timeline),
      currentLsn: row.lsn ?? '',
      currentSegment: row.segment ?? '',
      lagSegments: lagSegments(row, currentLsn, segmentSize),
      archiver: {
        archivedCount: Number(row.archived_count),
        lastArchivedWal: row.last_archived_wal,
        lastArchivedAt: row.last_archived_time?.toISOString() ?? null,
        failedCount: Number(row.failed_count),
        lastFailedWal: row.last_failed_wal,
        lastFailedAt: row.last_failed_time?.toISOString() ?? null,
      },
    };
    if (currentLsn !== null) status.exposure = exposure(last, Number(row.timeline), currentLsn, segmentSize);
    return status;
  }

  private pgUrl(tier: TierName): string {
    const url = this.context.config.tiers[tier].pgUrl?.reveal();
    if (!url) {
      throw new ConfigError(`no database URL for tier '${tier}'`, [`tiers.${tier}.pgUrl`], {
        hint: `pass --pg-url postgres://… or set tiers.${tier}.pgUrl in rookery.yaml`,
      });
    }
    return url;
  }

  /**
   * Forces a WAL switch that closes a segment. A switch on a segment with no WAL since the last
   * one is a no-op, so a restore point is written first: the segment then always has a record.
   */
  private async switchSegment(url: string): Promise<string> {
    return this.sql.withSession(url, async (session) => {
      await session.query(`select pg_create_restore_point('rookery-check')`);
      const [row] = await session.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
      return row.name;
    });
  }
}

/** archive_command runs `rookery … wal-push %p … --tier <tier>` (or the bin/rookery.js script). */
export function runsWalPushFor(command: string, tier: TierName): boolean {
  return (
    /\brookery(\.js)?\b[^;|&]*\bwal-push\b/.test(command) &&
    /(^|\s)%p(\s|$)/.test(command) &&
    new RegExp(`--tier(=|\\s+)${tier}(\\s|$)`).test(command)
  );
}

/** archive_command for messages: values of variables that look like secrets are hidden. */
export function redactCommand(command: string): string {
  return command.replace(/\b(\w*(?:SECRET|PASSWORD|TOKEN|KEY)\w*)=\S+/gi, '$1=***');
}

function newestSegment(objects: readonly WalObject[]): WalObject | null {
  let newest: WalObject | null = null;
  for (const object of objects) {
    if (object.file.kind !== 'segment') continue;
    if (
      !newest ||
      object.file.timeline > newest.file.timeline ||
      (object.file.timeline === newest.file.timeline && (object.file.segmentNumber ?? 0n) >= (newest.file.segmentNumber ?? 0n))
    ) {
      newest = object;
    }
  }
  return newest;
}

function lagSegments(row: ServerRow, currentLsn: bigint | null, segmentSize: number): number | null {
  if (currentLsn === null || !row.last_archived_wal) return null;
  const archived = parseWalFileName(row.last_archived_wal, segmentSize);
  if (!archived || archived.segmentNumber === null) return null;
  // Complete segments between the last archived one and the one being written now.
  return Math.max(0, Number(walSegmentNumberOf(currentLsn, segmentSize) - archived.segmentNumber - 1n));
}

/**
 * WAL at risk: bytes from the end of the newest archived segment on the server's timeline to the
 * current LSN, and for how long (since that segment was archived) WAL has been accumulating.
 */
export function exposure(
  last: WalObject | null,
  timeline: number,
  currentLsn: bigint,
  segmentSize: number,
  now = new Date(),
): { seconds: number; bytes: number } {
  const onTimeline = last && last.file.timeline === timeline && last.file.segmentNumber !== null ? last : null;
  const archivedEnd = onTimeline ? walSegmentStartLsn((onTimeline.file.segmentNumber as bigint) + 1n, segmentSize) : 0n;
  const bytes = currentLsn > archivedEnd ? Number(currentLsn - archivedEnd) : 0;
  const seconds = bytes > 0 && onTimeline ? Math.max(0, (now.getTime() - onTimeline.archivedAt.getTime()) / 1000) : 0;
  return { seconds, bytes };
}
