import { lchown, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { BackupManifest, ConfigError, IntegrityError, RestoreTargetError, TablespaceRecord } from '@rookery/core';

/**
 * Where a restore puts the backup's user tablespaces. `map`: a tablespace, named by its original
 * location, its name or its OID, → its new directory (--tablespace-map OLD=NEW, repeatable);
 * `all`: every tablespace not in `map` under all/<oid> (--tablespace-map-all DIR). Neither: each
 * goes back to its original location.
 */
export interface TablespaceMapping {
  map?: Record<string, string>;
  all?: string;
}

/** A tablespace of the backup and the directory it is restored to. */
export interface TablespaceTarget extends TablespaceRecord {
  restoredTo: string;
}

/** The file of the base archive that lists the tablespaces instead of pg_tblspc's links. */
export const TABLESPACE_MAP_FILE = 'tablespace_map';

/**
 * The user tablespaces a physical backup holds (one tablespace-tar artifact each, or in an
 * incremental one tablespace-incremental each).
 */
export function backupTablespaces(manifest: Pick<BackupManifest, 'id' | 'artifacts'>): TablespaceRecord[] {
  const tablespaces = manifest.artifacts.flatMap((artifact) => {
    if (artifact.kind !== 'tablespace-tar' && artifact.kind !== 'tablespace-incremental') return [];
    const tablespace = artifact.tablespace;
    if (!tablespace || !Number.isInteger(tablespace.oid) || tablespace.oid <= 0 || !isAbsolute(tablespace.location ?? '')) {
      throw new IntegrityError(`backup '${manifest.id}': tablespace artifact '${artifact.name}' has no valid OID and absolute location`);
    }
    return [tablespace];
  });
  const oids = new Set(tablespaces.map((tablespace) => tablespace.oid));
  if (oids.size !== tablespaces.length) throw new IntegrityError(`backup '${manifest.id}' lists a tablespace twice`);
  return tablespaces;
}

/**
 * Pure: where each tablespace of the backup goes, checked before anything is written. Refuses a
 * mapping that names no tablespace of the backup, a relative directory, two tablespaces in one
 * directory (or one inside another), and a tablespace inside the data directory or around it.
 */
export function planTablespaces(
  manifest: Pick<BackupManifest, 'id' | 'artifacts'>,
  dataDirectory: string,
  mapping: TablespaceMapping,
): TablespaceTarget[] {
  const tablespaces = backupTablespaces(manifest);
  const listed = tablespaces.map((tablespace) => `${tablespace.name} (${tablespace.oid}, ${tablespace.location})`).join(', ') || 'none';
  const mapped = new Map<number, string>();
  for (const [old, next] of Object.entries(mapping.map ?? {})) {
    const key = old.length > 1 ? old.replace(/\/+$/, '') : old;
    const tablespace = tablespaces.find(
      (candidate) => candidate.location.replace(/\/+$/, '') === key || candidate.name === key || String(candidate.oid) === key,
    );
    if (!tablespace) {
      throw new ConfigError(`--tablespace-map ${old}=${next}: backup '${manifest.id}' has no tablespace '${old}'`, ['--tablespace-map'], {
        hint: `name a tablespace by its original location, name or OID; the backup's tablespaces: ${listed}`,
      });
    }
    if (mapped.has(tablespace.oid)) {
      throw new ConfigError(`--tablespace-map names tablespace '${tablespace.name}' twice`, ['--tablespace-map']);
    }
    mapped.set(tablespace.oid, requireAbsolute(next, '--tablespace-map'));
  }
  const all = mapping.all === undefined ? undefined : requireAbsolute(mapping.all, '--tablespace-map-all');
  const targets = tablespaces.map((tablespace) => ({
    ...tablespace,
    restoredTo: normalize(mapped.get(tablespace.oid) ?? (all ? join(all, String(tablespace.oid)) : tablespace.location)).replace(
      /(.)\/+$/,
      '$1',
    ),
  }));
  const data = normalize(dataDirectory);
  for (const target of targets) {
    if (within(target.restoredTo, data) || within(data, target.restoredTo)) {
      throw new RestoreTargetError(
        `tablespace '${target.name}' would be restored to ${target.restoredTo}, ${target.restoredTo === data ? 'the' : within(target.restoredTo, data) ? 'inside the' : 'around the'} data directory ${data}`,
        { hint: 'give it a directory of its own outside the data directory: --tablespace-map OLD=NEW or --tablespace-map-all DIR' },
      );
    }
    for (const other of targets) {
      if (other !== target && within(target.restoredTo, other.restoredTo)) {
        throw new RestoreTargetError(
          `tablespaces '${target.name}' and '${other.name}' would share ${other.restoredTo}: each needs a directory of its own`,
          { hint: 'map them apart with --tablespace-map OLD=NEW' },
        );
      }
    }
  }
  return targets;
}

/**
 * Links pg_tblspc/<oid> to where each tablespace was restored, from the signed manifest and the
 * mapping, and removes the archive's tablespace_map (PostgreSQL would otherwise recreate the
 * links to the original locations at start-up). The tablespace_map must list exactly the
 * backup's tablespaces, and pg_tblspc must hold nothing else: a base archive that would link
 * the cluster to another directory is refused.
 */
export async function linkTablespaces(
  dataDirectory: string,
  manifest: Pick<BackupManifest, 'id'>,
  targets: TablespaceTarget[],
  owner: { uid: number; gid: number } | null,
): Promise<void> {
  const mapFile = join(dataDirectory, TABLESPACE_MAP_FILE);
  const text = await readFile(mapFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  const listed = parseTablespaceMap(text);
  const expected = targets.map((target) => `${target.oid} ${target.location}`).sort();
  const found = listed.map((entry) => `${entry.oid} ${entry.location}`).sort();
  if (expected.join('\n') !== found.join('\n')) {
    throw new IntegrityError(
      `backup '${manifest.id}': the base archive's tablespace_map lists ${found.join(', ') || 'no tablespace'}, the manifest ${expected.join(', ') || 'none'}`,
    );
  }
  await rm(mapFile, { force: true });
  const links = join(dataDirectory, 'pg_tblspc');
  const present = await readdir(links).catch(() => [] as string[]);
  if (present.length > 0) {
    throw new IntegrityError(
      `backup '${manifest.id}': the base archive holds pg_tblspc/${present[0]}; its tablespaces come from the manifest`,
    );
  }
  for (const target of targets) {
    const link = join(links, String(target.oid));
    await symlink(target.restoredTo, link);
    if (owner) await lchown(link, owner.uid, owner.gid);
  }
}

/** Pure: the lines of a tablespace_map ("<oid> <location>", a backslash escaping the next character). */
export function parseTablespaceMap(text: string): { oid: number; location: string }[] {
  const entries: { oid: number; location: string }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const match = /^(\d+) (.+)$/.exec(line);
    if (!match) throw new IntegrityError(`tablespace_map has a line that is not '<oid> <location>': ${JSON.stringify(line.slice(0, 80))}`);
    entries.push({ oid: Number(match[1]), location: match[2].replace(/\\(.)/g, '$1') });
  }
  return entries;
}

function requireAbsolute(path: string, option: string): string {
  if (!isAbsolute(path)) throw new ConfigError(`${option}: '${path}' is not an absolute path`, [option]);
  return normalize(path);
}

/** Whether `path` is `directory` or inside it. */
function within(path: string, directory: string): boolean {
  const rest = relative(directory, path);
  return rest === '' || (!rest.startsWith('..') && !isAbsolute(rest));
}
