import { PgSqlClient } from './pg-sql.client';

/** What the primary says about our synchronous standby (pg_stat_replication). */
export interface ReplicationConnection {
  pid: number;
  /** 'streaming', 'catchup', 'startup', … */
  state: string;
  /** 'sync', 'potential', 'quorum' or 'async'. */
  syncState: string;
  sentLsn: string | null;
  writeLsn: string | null;
  flushLsn: string | null;
}

/** The permanent slot (pg_replication_slots). */
export interface ReplicationSlotState {
  active: boolean;
  restartLsn: string | null;
  /** Bytes of WAL the primary keeps for the slot (current LSN − restart LSN); null before first use. */
  retainedBytes: number | null;
}

export interface SynchronousStandbyState {
  /** null when the application name is not connected. */
  replication: ReplicationConnection | null;
  /** null when the slot does not exist. */
  slot: ReplicationSlotState | null;
  synchronousStandbyNames: string;
  /** synchronous_commit of the primary: only 'on', 'remote_write' and 'remote_apply' wait for a standby. */
  synchronousCommit: string;
  /** The primary's current write-ahead log position. */
  currentLsn: string;
}

const STATE_SQL = `
  select current_setting('synchronous_standby_names') as names,
         current_setting('synchronous_commit') as synchronous_commit,
         pg_current_wal_lsn()::text as current_lsn,
         (select row_to_json(r) from (
            select pid, state, sync_state, sent_lsn::text, write_lsn::text, flush_lsn::text
              from pg_stat_replication where application_name = $1
             order by backend_start desc limit 1) r) as replication,
         (select row_to_json(s) from (
            select active, restart_lsn::text,
                   (pg_current_wal_lsn() - restart_lsn)::bigint as retained_bytes
              from pg_replication_slots where slot_name = $2) s) as slot`;

interface StateRow extends Record<string, unknown> {
  names: string;
  synchronous_commit: string;
  current_lsn: string;
  replication: {
    pid: number;
    state: string;
    sync_state: string;
    sent_lsn: string | null;
    write_lsn: string | null;
    flush_lsn: string | null;
  } | null;
  slot: { active: boolean; restart_lsn: string | null; retained_bytes: number | string | null } | null;
}

/**
 * The SQL side of a synchronous pg_receivewal: what the primary reports about the standby and
 * its slot, and the synchronous_standby_names setting that makes commits wait for it.
 */
export class PgReceivewalClient {
  constructor(private readonly sql: PgSqlClient = new PgSqlClient()) {}

  async state(url: string, options: { applicationName: string; slot: string }): Promise<SynchronousStandbyState> {
    const [row] = await this.sql.query<StateRow>(url, STATE_SQL, [options.applicationName, options.slot]);
    const replication = row.replication;
    const slot = row.slot;
    return {
      replication: replication && {
        pid: replication.pid,
        state: replication.state,
        syncState: replication.sync_state,
        sentLsn: replication.sent_lsn,
        writeLsn: replication.write_lsn,
        flushLsn: replication.flush_lsn,
      },
      slot: slot && {
        active: slot.active,
        restartLsn: slot.restart_lsn,
        retainedBytes: slot.retained_bytes === null ? null : Number(slot.retained_bytes),
      },
      synchronousStandbyNames: row.names,
      synchronousCommit: row.synchronous_commit,
      currentLsn: row.current_lsn,
    };
  }

  /**
   * ALTER SYSTEM SET synchronous_standby_names and reload: the setting then holds across restarts
   * of the primary (postgresql.auto.conf). Sessions pick it up at their next statement.
   */
  async setSynchronousStandbyNames(url: string, value: string): Promise<void> {
    await this.sql.withSession(url, async (session) => {
      // ALTER SYSTEM takes no parameters: the value is a quoted literal.
      await session.query(`alter system set synchronous_standby_names = ${quoteLiteral(value)}`);
      await session.query('select pg_reload_conf()');
    });
  }

  /** The value synchronous_standby_names has in new sessions (after a reload has been processed). */
  async synchronousStandbyNames(url: string): Promise<string> {
    const [row] = await this.sql.query<{ names: string }>(url, "select current_setting('synchronous_standby_names') as names");
    return row.names;
  }
}

/** synchronous_standby_names naming exactly one standby: the application name, double-quoted. */
export function synchronousStandbyNamesFor(applicationName: string): string {
  return `"${applicationName.replace(/"/g, '""')}"`;
}

/**
 * Whether synchronous_standby_names (`a, b`, `FIRST 1 (a, b)`, `ANY 2 ("A", b)`, `*`) lists the
 * application name. Unquoted names compare case-insensitively, as PostgreSQL does.
 */
export function listsStandby(setting: string, applicationName: string): boolean {
  const body = setting
    .trim()
    .replace(/^(?:(?:first|any)\s+)?\d+\s*\(([\s\S]*)\)$/i, '$1')
    .trim();
  if (!body) return false;
  return splitNames(body).some((name) => {
    if (name === '*') return true;
    if (name.startsWith('"') && name.endsWith('"') && name.length >= 2) return name.slice(1, -1).replace(/""/g, '"') === applicationName;
    return name.toLowerCase() === applicationName.toLowerCase();
  });
}

function splitNames(body: string): string[] {
  const names: string[] = [];
  let current = '';
  let quoted = false;
  for (const character of body) {
    if (character === '"') quoted = !quoted;
    if (character === ',' && !quoted) {
      names.push(current.trim());
      current = '';
    } else current += character;
  }
  names.push(current.trim());
  return names.filter(Boolean);
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
