// Throwaway PostgreSQL 15 clusters for the benchmark, run as the postgres OS user on random free
// loopback ports, plus helpers to start/stop restored data directories.
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, writeFileSync, appendFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sh, asPostgres } from './proc.mjs';

export const PGBIN = '/usr/lib/postgresql/15/bin';

let pgIds;
export function postgresIds() {
  if (!pgIds) {
    const uid = Number(sh('id', ['-u', 'postgres']).stdout.trim());
    const gid = Number(sh('id', ['-g', 'postgres']).stdout.trim());
    pgIds = { uid, gid };
  }
  return pgIds;
}

/** A temp dir under os.tmpdir() owned by postgres. */
export function pgTempDir(prefix) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  return dir;
}

export function mkPgDir(dir, mode = 0o700) {
  mkdirSync(dir, { recursive: true, mode });
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  return dir;
}

/** A free TCP port on 127.0.0.1 (never 5432). */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    if (port !== 5432) return port;
  }
}

/** Registry of every server this process started, so failures still stop them. */
const started = new Set();

export function pgCtlStop(dataDir, mode = 'fast') {
  if (!existsSync(path.join(dataDir, 'postmaster.pid'))) {
    started.delete(dataDir);
    return;
  }
  asPostgres(`${PGBIN}/pg_ctl`, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop'], { allowFail: true });
  started.delete(dataDir);
}

export function stopAllStarted() {
  for (const d of [...started]) {
    try {
      pgCtlStop(d, 'immediate');
    } catch (e) {
      console.error(`could not stop ${d}: ${e.message}`);
    }
  }
}

/** Track a data directory a tool (e.g. rookery restore --start) started, for cleanup. */
export function trackStarted(dataDir) {
  started.add(dataDir);
}

/** Start a data directory on port with sockets in sockDir; extra -c settings as an object. */
export function pgCtlStart(dataDir, port, sockDir, settings = {}, logFile = path.join(sockDir, `pg-${port}.log`)) {
  const o = [`-p ${port}`, `-k ${sockDir}`, `-c listen_addresses=127.0.0.1`];
  for (const [k, v] of Object.entries(settings)) o.push(`-c ${k}=${v}`);
  started.add(dataDir);
  asPostgres(`${PGBIN}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-o', o.join(' '), '-w', '-t', '600', 'start']);
}

/** psql as root over the unix socket. Returns trimmed stdout. */
export function psql(conn, sql, { db = 'postgres', allowFail = false } = {}) {
  const r = sh(
    `${PGBIN}/psql`,
    ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', conn.host, '-p', String(conn.port), '-U', 'postgres', '-d', db, '-c', sql],
    { allowFail },
  );
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Switches to a new WAL segment and waits (up to 600 s) until the server's archiver has archived it. */
export function switchAndWaitArchived(conn) {
  const name = psql(conn, 'select pg_walfile_name(pg_switch_wal())');
  const deadline = Date.now() + 600_000;
  for (;;) {
    const last = psql(conn, "select coalesce(last_archived_wal, '') from pg_stat_archiver");
    if (last && last.slice(8) >= name.slice(8)) return;
    if (Date.now() > deadline) throw new Error(`segment ${name} not archived within 600 s (last ${last})`);
    sh('sleep', ['0.2']);
  }
}

/** Wait until the server at conn accepts connections and is out of recovery. */
export function waitReadWrite(conn, timeoutS = 600) {
  const deadline = Date.now() + timeoutS * 1000;
  while (Date.now() < deadline) {
    const r = spawnSync(
      `${PGBIN}/psql`,
      ['-X', '-At', '-h', conn.host, '-p', String(conn.port), '-U', 'postgres', '-d', 'postgres', '-c', 'select pg_is_in_recovery()'],
      { encoding: 'utf8' },
    );
    if (r.status === 0 && r.stdout.trim() === 'f') return;
    spawnSync('sleep', ['0.02']);
  }
  throw new Error(`server on port ${conn.port} not ready (read-write) within ${timeoutS}s`);
}

/**
 * initdb + start a source cluster: fsync on, wal_level=replica, max_wal_senders=10,
 * archive_mode=on (archive_command set later), trust auth on 127.0.0.1 and local.
 */
export async function createCluster(root) {
  const dataDir = path.join(root, 'data');
  const sockDir = mkPgDir(path.join(root, 'sock'), 0o755);
  const port = await freePort();
  asPostgres(`${PGBIN}/initdb`, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions']);
  appendFileSync(
    path.join(dataDir, 'postgresql.conf'),
    [
      '',
      '# rookery bench',
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${sockDir}'`,
      'fsync = on',
      'wal_level = replica',
      'max_wal_senders = 10',
      'archive_mode = on',
      "archive_command = '/bin/true'",
      'max_wal_size = 4GB',
      'checkpoint_timeout = 30min',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dataDir, 'pg_hba.conf'),
    [
      'local all all trust',
      'host all all 127.0.0.1/32 trust',
      'local replication all trust',
      'host replication all 127.0.0.1/32 trust',
      '',
    ].join('\n'),
  );
  pgCtlStart(dataDir, port, sockDir, {}, path.join(root, 'server.log'));
  const conn = { host: sockDir, port };
  return { root, dataDir, sockDir, port, conn, url: `postgres://postgres@127.0.0.1:${port}/postgres` };
}

/** Pids of every process of a running cluster (postmaster and its children). */
export function clusterPids(dataDir) {
  let pm;
  try {
    pm = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return [];
  }
  const r = spawnSync('pgrep', ['-P', String(pm)], { encoding: 'utf8' });
  return [pm, ...r.stdout.split(/\s+/).filter(Boolean).map(Number)];
}
