// pgBackRest driver: a stanza with repo1-path in a temp dir, run as the postgres OS user.
import { writeFileSync, chownSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { asPostgres, sh } from './proc.mjs';
import { mkPgDir, postgresIds, psql } from './cluster.mjs';

export const STANZA = 'bench';

export function pgbackrestAvailable() {
  return sh('sh', ['-c', 'command -v pgbackrest'], { allowFail: true }).status === 0;
}

/** Write the config and return { conf, repo, args(extra) }. */
export function setupPgBackRest(root, cluster) {
  const dir = mkPgDir(path.join(root, 'pgbackrest'), 0o700);
  const repo = mkPgDir(path.join(dir, 'repo'));
  const log = mkPgDir(path.join(dir, 'log'));
  const lock = mkPgDir(path.join(dir, 'lock'));
  const spool = mkPgDir(path.join(dir, 'spool'));
  const conf = path.join(dir, 'pgbackrest.conf');
  writeFileSync(
    conf,
    [
      '[global]',
      `repo1-path=${repo}`,
      'repo1-retention-full=100',
      `log-path=${log}`,
      `lock-path=${lock}`,
      `spool-path=${spool}`,
      'log-level-console=warn',
      'log-level-file=info',
      'compress-level-network=1',
      '',
      `[${STANZA}]`,
      `pg1-path=${cluster.dataDir}`,
      `pg1-port=${cluster.port}`,
      `pg1-socket-path=${cluster.sockDir}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
  );
  const { uid, gid } = postgresIds();
  chownSync(conf, uid, gid);
  return { dir, repo, conf };
}

export function pgbackrestArgs(pb, cmd, extra = []) {
  return ['-u', 'postgres', '--', 'pgbackrest', `--config=${pb.conf}`, `--stanza=${STANZA}`, ...extra, cmd];
}

/** Point archive_command at pgBackRest, reload, create the stanza and check archiving. */
export function enableArchiving(pb, cluster) {
  psql(cluster.conn, `ALTER SYSTEM SET archive_command = 'pgbackrest --config=${pb.conf} --stanza=${STANZA} archive-push %p'`);
  psql(cluster.conn, 'SELECT pg_reload_conf()');
  asPostgres('pgbackrest', [`--config=${pb.conf}`, `--stanza=${STANZA}`, 'stanza-create']);
  asPostgres('pgbackrest', [`--config=${pb.conf}`, `--stanza=${STANZA}`, 'check']);
}

/** Labels of the backups in the repository, oldest first. */
export function backupLabels(pb) {
  try {
    return readdirSync(path.join(pb.repo, 'backup', STANZA))
      .filter((d) => /^\d{8}-\d{6}F/.test(d))
      .sort();
  } catch {
    return [];
  }
}

export function backupDir(pb, label) {
  return path.join(pb.repo, 'backup', STANZA, label);
}
