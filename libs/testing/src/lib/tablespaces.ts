import { chmod, chown, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { lookupOsUser } from '@rookery/postgres';
import { TestCluster } from './cluster.harness';

/**
 * Creates one user tablespace per name, each in its own directory parentDir/<name> (0700, owned
 * by the server's OS account as PostgreSQL requires; parentDir is made traversable). Resolves
 * with each tablespace's directory by name.
 */
export async function createTablespaces(
  cluster: TestCluster,
  parentDir: string,
  names: readonly string[],
): Promise<Record<string, string>> {
  const owner = lookupOsUser('postgres');
  await mkdir(parentDir, { recursive: true, mode: 0o711 });
  await chmod(parentDir, 0o711);
  const locations: Record<string, string> = {};
  for (const name of names) {
    const location = join(parentDir, name);
    await mkdir(location, { mode: 0o700 });
    await chown(location, owner.uid, owner.gid);
    await cluster.query(`create tablespace ${name} location '${location}'`);
    locations[name] = location;
  }
  return locations;
}

export interface FileSnapshotEntry {
  path: string;
  /** 'file', 'directory' or 'link' (a symbolic link is not followed). */
  type: string;
  size: number;
  mtimeMs: number;
}

/**
 * Every entry under `dir` (itself included) with its size and modification time, sorted by path:
 * two snapshots are equal only if nothing was added, removed, resized or written in between.
 */
export async function fileSnapshot(dir: string): Promise<FileSnapshotEntry[]> {
  const paths = [dir, ...(await readdir(dir, { recursive: true })).map((entry) => join(dir, entry))].sort();
  const entries: FileSnapshotEntry[] = [];
  for (const path of paths) {
    const stats = await lstat(path);
    const type = stats.isSymbolicLink() ? 'link' : stats.isDirectory() ? 'directory' : 'file';
    entries.push({ path, type, size: type === 'directory' ? 0 : stats.size, mtimeMs: stats.mtimeMs });
  }
  return entries;
}

/**
 * The cluster shape the tablespace specs share: tablespaces 'fast' and 'cold' under parentDir, a
 * table in 'fast' with its index in 'cold', an ordinary table, and a database 'inspace' created in
 * 'cold' with a table of its own. Resolves with each tablespace's directory by name.
 */
export async function seedTablespaceCluster(cluster: TestCluster, parentDir: string): Promise<Record<string, string>> {
  const locations = await createTablespaces(cluster, parentDir, ['fast', 'cold']);
  await cluster.query(
    `create table hot (id int primary key, note text not null) tablespace fast;
     create index hot_note on hot (note) tablespace cold;
     insert into hot select g, md5(g::text) from generate_series(1, 30000) g;
     create table plain_rows as select g as id, repeat('p', 50) as payload from generate_series(1, 5000) g;`,
  );
  await cluster.query('create database inspace tablespace cold');
  await cluster.query(
    'create table docs as select g as id, repeat(md5(g::text), 10) as body from generate_series(1, 3000) g',
    [],
    'inspace',
  );
  return locations;
}
