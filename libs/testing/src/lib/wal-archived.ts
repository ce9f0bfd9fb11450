import { TestCluster } from './cluster.harness';
import { pollUntil } from './poll';

/**
 * Switches to a new WAL segment and waits until archive_command has archived the one it closed
 * (pg_stat_archiver), so a test can read the archive knowing everything committed is in it.
 */
export async function switchAndWaitArchived(server: Pick<TestCluster, 'query'>): Promise<void> {
  const [{ name }] = await server.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
  await pollUntil(
    async () =>
      (
        await server.query<{ last: string | null; failed: string | null }>(
          'select last_archived_wal as last, last_failed_wal as failed from pg_stat_archiver',
        )
      )[0],
    (status) => status.last !== null && status.last.slice(8) >= name.slice(8),
    { what: `segment ${name} to be archived` },
  );
}
