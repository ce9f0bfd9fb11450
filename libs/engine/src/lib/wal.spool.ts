import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Acknowledgements of batched wal-push (wal.archiveAsync): `<spool>/<name>.ok` holds the sha256
 * of the file content that is durable in the store. Written only after the store confirmed the
 * write; a later archive_command call for the same name returns 0 only when its file has that
 * same content, then removes the record. Losing a record costs a duplicate push (which succeeds),
 * never a lost segment, so the records need no fsync.
 */
export class WalSpool {
  constructor(readonly directory: string) {}

  async acknowledge(name: string, sha256: string): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const temporary = join(this.directory, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(temporary, `${sha256}\n`, { mode: 0o600 });
    await rename(temporary, this.path(name));
  }

  async isAcknowledged(name: string, sha256: string): Promise<boolean> {
    return (await this.recorded(name)) === sha256;
  }

  async isAcknowledgedAtAll(name: string): Promise<boolean> {
    return (await this.recorded(name)) !== null;
  }

  async release(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  private async recorded(name: string): Promise<string | null> {
    try {
      return (await readFile(this.path(name), 'utf8')).trim();
    } catch {
      return null;
    }
  }

  private path(name: string): string {
    return join(this.directory, `${name}.ok`);
  }
}
