import { chown, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

/**
 * What a restored data directory must not bring along unchecked: settings that make the server
 * run a shell command or load code on the restore host. A backup is data from elsewhere (a
 * forged or tampered one included); its configuration is not the restore host's to obey.
 */
export const GUARDED_COMMAND_SETTINGS = [
  'archive_command',
  'archive_library',
  'restore_command',
  'recovery_end_command',
  'archive_cleanup_command',
  'ssl_passphrase_command',
] as const;
export const GUARDED_LIBRARY_SETTINGS = [
  'shared_preload_libraries',
  'local_preload_libraries',
  'session_preload_libraries',
  'dynamic_library_path',
] as const;

/** One setting rookery commented out in a restored data directory. */
export interface NeutralisedSetting {
  setting: string;
  /** The value the backup set. */
  value: string;
  /** Relative to the data directory. */
  file: string;
  line: number;
  reason: string;
}

/** An include that rookery could not inspect (outside the data directory or unreadable). */
export interface UninspectedInclude {
  file: string;
  reason: string;
}

export interface SettingsGuardReport {
  neutralised: NeutralisedSetting[];
  uninspected: UninspectedInclude[];
}

/**
 * The library settings the backup's manifest records (BackupManifest.librarySettings): a restored
 * configuration may set them only to the recorded value. A setting the manifest does not record
 * (older manifests, or hidden from the backup role) counts as empty: any value is a change.
 */
export type RecordedSettings = Readonly<Record<string, string>>;

const MARKER = '# rookery restore:';
const INCLUDE = /^(include|include_if_exists|include_dir)$/i;
const GUARDED = new Set<string>([...GUARDED_COMMAND_SETTINGS, ...GUARDED_LIBRARY_SETTINGS]);

interface ConfigLine {
  name: string;
  value: string;
}

/** name [=] value [# comment], in postgresql.conf syntax; null for blank lines and comments. */
export function parseConfigLine(line: string): ConfigLine | null {
  const match = /^\s*([A-Za-z_][A-Za-z0-9_.$-]*)\s*=?\s*(.*)$/.exec(line);
  if (!match) return null;
  return { name: match[1].toLowerCase(), value: parseValue(match[2]) };
}

function parseValue(rest: string): string {
  const text = rest.trim();
  if (!text.startsWith("'")) return text.replace(/\s*#.*$/, '').trim();
  let value = '';
  for (let index = 1; index < text.length; index++) {
    const char = text[index];
    if (char === "'" && text[index + 1] === "'") {
      value += "'";
      index++;
    } else if (char === "'") {
      return value;
    } else if (char === '\\' && index + 1 < text.length) {
      value += text[++index];
    } else {
      value += char;
    }
  }
  return value;
}

/** Why a guarded setting's value may not stay, or null when it may. */
export function neutraliseReason(name: string, value: string, recorded: RecordedSettings = {}): string | null {
  if (!GUARDED.has(name)) return null;
  if ((GUARDED_LIBRARY_SETTINGS as readonly string[]).includes(name)) {
    const expected = recorded[name] ?? '';
    if (sameLibraryList(value, expected)) return null;
    return expected
      ? `loads libraries the backup's manifest does not record (it records '${expected}')`
      : 'loads code on the restore host; the backup records no libraries';
  }
  if (value.trim() === '') return null;
  return 'a command from the backup would run on the restore host';
}

/**
 * The same list of libraries (or directories): the server's SHOW form and a configuration file's
 * may differ in spaces and quoting ('a, b' and 'a,"b"'). A double-quoted item is one name, commas
 * included, as PostgreSQL splits the list.
 */
function sameLibraryList(a: string, b: string): boolean {
  return JSON.stringify(splitList(a)) === JSON.stringify(splitList(b));
}

function splitList(text: string): string[] {
  const items: string[] = [];
  const pattern = /\s*(?:"((?:[^"]|"")*)"|([^,]*?))\s*(?:,|$)/g;
  for (let match = pattern.exec(text); match && match[0] !== ''; match = pattern.exec(text)) {
    items.push(match[1] !== undefined ? match[1].replace(/""/g, '"') : match[2]);
  }
  return items.filter((item) => item !== '');
}

/**
 * One configuration file's text with every guarded setting that may not stay commented out,
 * each under a marker line naming rookery and the reason; the includes it names are returned so
 * the caller can follow them.
 */
export function neutraliseConfigText(
  text: string,
  file: string,
  recorded: RecordedSettings = {},
): { text: string; neutralised: NeutralisedSetting[]; includes: { kind: string; path: string }[] } {
  const neutralised: NeutralisedSetting[] = [];
  const includes: { kind: string; path: string }[] = [];
  const out: string[] = [];
  text.split('\n').forEach((line, index) => {
    const parsed = parseConfigLine(line);
    if (parsed && INCLUDE.test(parsed.name)) includes.push({ kind: parsed.name, path: parsed.value });
    const reason = parsed ? neutraliseReason(parsed.name, parsed.value, recorded) : null;
    if (!parsed || !reason) {
      out.push(line);
      return;
    }
    neutralised.push({ setting: parsed.name, value: parsed.value, file, line: index + 1, reason });
    out.push(`${MARKER} disabled ${parsed.name}: ${reason} (restore --keep-settings keeps it)`, `#${line}`);
  });
  return { text: out.join('\n'), neutralised, includes };
}

/**
 * Comments out, in postgresql.conf, the files it includes (inside the data directory) and
 * postgresql.auto.conf, every guarded setting rookery did not set, and returns what changed.
 * Run before rookery appends its own settings (which PostgreSQL reads last, so they win).
 */
export async function neutraliseRestoredSettings(
  dataDirectory: string,
  owner: { uid: number; gid: number } | null,
  recorded: RecordedSettings = {},
): Promise<SettingsGuardReport> {
  const report: SettingsGuardReport = { neutralised: [], uninspected: [] };
  const seen = new Set<string>();
  const visit = async (path: string, optional: boolean): Promise<void> => {
    if (seen.has(path)) return;
    seen.add(path);
    const file = relative(dataDirectory, path);
    if (file.startsWith('..') || isAbsolute(file)) {
      report.uninspected.push({ file: path, reason: 'outside the restored data directory: not part of the backup, left as it is' });
      return;
    }
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (!(optional && error.code === 'ENOENT')) report.uninspected.push({ file, reason: `unreadable: ${error.code ?? error.message}` });
      return null;
    });
    if (text === null) return;
    const result = neutraliseConfigText(text, file, recorded);
    if (result.neutralised.length > 0) {
      await writeFile(path, result.text, { mode: 0o600 });
      if (owner) await chown(path, owner.uid, owner.gid);
      report.neutralised.push(...result.neutralised);
    }
    for (const include of result.includes) {
      const target = resolve(dirname(path), include.path);
      if (include.kind === 'include_dir') await visitDirectory(target);
      else await visit(target, include.kind === 'include_if_exists');
    }
  };
  const visitDirectory = async (directory: string): Promise<void> => {
    const file = relative(dataDirectory, directory);
    if (file.startsWith('..') || isAbsolute(file)) {
      report.uninspected.push({ file: directory, reason: 'outside the restored data directory: not part of the backup, left as it is' });
      return;
    }
    const entries = await readdir(directory).catch(() => [] as string[]);
    for (const entry of entries.filter((name) => name.endsWith('.conf') && !name.startsWith('.')).sort())
      await visit(join(directory, entry), false);
  };
  await visit(join(dataDirectory, 'postgresql.conf'), true);
  await visit(join(dataDirectory, 'postgresql.auto.conf'), true);
  return report;
}

/** One line per neutralised setting, for the restore's output. */
export function describeNeutralised(setting: NeutralisedSetting): string {
  return `disabled ${setting.setting} = '${setting.value}' (${setting.file}:${setting.line}): ${setting.reason}`;
}
