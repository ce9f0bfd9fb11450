import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch directory under the loosest umask; `close()` restores the umask and removes the directory. */
export interface LooseUmaskScratch {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * For specs of file modes: a fresh temporary directory, and the process umask set to 0 until
 * `close()`, so that every mode the spec sees comes from the code under test, not from the
 * caller's umask. Open it in beforeEach, close it in afterEach.
 */
export async function looseUmaskScratch(prefix: string): Promise<LooseUmaskScratch> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const previous = process.umask(0);
  return {
    path,
    async close() {
      process.umask(previous);
      await rm(path, { recursive: true, force: true });
    },
  };
}
