import { TestCluster } from './cluster.harness';

/**
 * Switches to a new WAL segment and waits until archive_command has archived the one it closed
 * (pg_stat_archiver), so a test can read the archive knowing everything committed is in it.
 */
export async function switchAndWaitArchived(server: Pick<TestCluster, 'query'>, timeoutMs = 60_000): Promise<void> {
  const [{ name }] = await server.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [status] = await server.query<{ last: string | null; failed: string | null }>('select last_archived_wal as last, last_failed_wal as failed from pg_stat_archiver');
    if (status.last && status.last.slice(8) >= name.slice(8)) return;
    if (Date.now() > deadline) throw new Error(`segment ${name} not archived in time (last ${status.last}, last failed ${status.failed})`);
    await new Promise((done) => setTimeout(done, 100));
  }
}
