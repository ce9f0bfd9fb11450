import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';

/** Permission bits that let an account other than the file's owner read (or replace) a key. */
const SHARED_ACCESS_BITS = 0o077;

export type KeyFileRead = { key: Buffer } | { problem: string; hint?: string };

/**
 * Reads a key file named by `setting` (encryption.keyFile, …). A key file any other account can
 * read or write (group or other permission bits) is refused unless `allowReadable` (the
 * operator's explicit choice, for a group that must share it): a key readable by others is no
 * secret. The mode is taken from the open file, so the checked file is the one read.
 */
export function readKeyFile(path: string, setting: string, allowReadable: boolean): KeyFileRead {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { problem: `${setting}: cannot read '${path}'` };
  }
  try {
    const mode = fstatSync(fd).mode & 0o7777;
    if (!allowReadable && (mode & SHARED_ACCESS_BITS) !== 0) {
      return {
        problem: `${setting}: '${path}' is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')})`,
        hint: `chmod 600 ${path} (or set ${allowReadableSetting(setting)}: true if other accounts must read it)`,
      };
    }
    return { key: readFileSync(fd) };
  } catch {
    return { problem: `${setting}: cannot read '${path}'` };
  } finally {
    closeSync(fd);
  }
}

/**
 * The setting that allows a readable file beside `setting`: encryption.keyFile →
 * encryption.allowReadableKeyFile, events.sasl.passwordFile → events.sasl.allowReadablePasswordFile.
 */
export function allowReadableSetting(setting: string): string {
  return setting.replace(/([a-z]+)File$/, (_, word: string) => `allowReadable${word[0].toUpperCase()}${word.slice(1)}File`);
}
