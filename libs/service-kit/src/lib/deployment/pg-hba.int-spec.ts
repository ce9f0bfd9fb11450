import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TestCluster, startCluster } from '@rookery/testing';

/**
 * docker/postgres/pg_hba.conf, the file the stack's database image starts with
 * (`-c hba_file=…`), on a real PostgreSQL 15: a replication connection over TCP with a password
 * is admitted (what oltp-backup's BASE_BACKUP and queue-wal's pg_receivewal open from their
 * containers), a wrong password is not. Beside it, the one line the official postgres image adds
 * for connections from other hosts (`host all all all scram-sha-256`) refuses the same replication
 * connection: what issue 16 found. The compose network is stood in for by the loopback network,
 * the only one here; `samenet` matches the subnets of the server's own interfaces, loopback included.
 */
const COMPOSE_HBA = resolve(__dirname, '..', '..', '..', '..', '..', 'docker', 'postgres', 'pg_hba.conf');
const PSQL = '/usr/lib/postgresql/15/bin/psql';
const ROLE = 'compose_backup';
const PASSWORD = 'compose-test-password';

describe('docker/postgres/pg_hba.conf on PostgreSQL 15', () => {
  let cluster: TestCluster;

  /** IDENTIFY_SYSTEM over a physical replication connection from 127.0.0.1 as ROLE. */
  function identifySystem(password: string): { status: number | null; output: string } {
    const result = spawnSync(
      PSQL,
      [`host=127.0.0.1 port=${cluster.port} user=${ROLE} dbname=postgres replication=true`, '-XAtc', 'IDENTIFY_SYSTEM'],
      {
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin', PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
      },
    );
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  /** Restarts the server on the pg_hba.conf with these contents. */
  async function useHba(contents: string): Promise<void> {
    const file = join(cluster.dataDir, 'compose_pg_hba.conf');
    writeFileSync(file, contents);
    await cluster.stop();
    await cluster.start();
  }

  beforeAll(async () => {
    cluster = await startCluster({ name: 'compose-pg-hba' });
    await cluster.query(`create role ${ROLE} login replication password '${PASSWORD}'`);
    // hba_file needs a restart; the server reads it from its data directory (its account's).
    copyFileSync(COMPOSE_HBA, join(cluster.dataDir, 'compose_pg_hba.conf'));
    await cluster.query(`alter system set hba_file = '${join(cluster.dataDir, 'compose_pg_hba.conf')}'`);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('the official image line alone refuses replication from another host', async () => {
    await useHba('host all all all scram-sha-256\n');
    const refused = identifySystem(PASSWORD);
    expect(refused.output).toMatch(/no pg_hba\.conf entry for replication connection from host "127\.0\.0\.1", user "compose_backup"/);
    expect(refused.status).not.toBe(0);
  });

  it('admits a replication connection with the password, and refuses a wrong one', async () => {
    await useHba(readFileSync(COMPOSE_HBA, 'utf8'));
    const admitted = identifySystem(PASSWORD);
    expect(admitted.output).toMatch(/^\d+\|1\|[0-9A-F]+\/[0-9A-F]+\|\s*$/m);
    expect(admitted.status).toBe(0);
    const refused = identifySystem('wrong');
    expect(refused.output).toMatch(/password authentication failed for user "compose_backup"/);
    expect(refused.status).not.toBe(0);
  });
});
