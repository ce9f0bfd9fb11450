import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from '@rookery/testing';
import { ExtractionSync } from './extraction-sync';

jest.setTimeout(180_000);

/** A syncMember whose calls are recorded and settle only when the test says so. */
function controlledSyncs() {
  const calls: string[] = [];
  const pending: { member: string; settle: (error?: Error) => void }[] = [];
  const syncMember = (member: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push(member);
      pending.push({ member, settle: (error) => (error ? reject(error) : resolve()) });
    });
  /** Settles the oldest sync in flight and lets the loop take its next step. */
  async function settleNext(error?: Error): Promise<string> {
    await until(() => pending.length > 0);
    const next = pending.shift() as (typeof pending)[number];
    next.settle(error);
    await new Promise((resolve) => setImmediate(resolve));
    return next.member;
  }
  return { calls, pending, syncMember, settleNext };
}

/** Waits for `condition` (a generous cap: a wait, never a time bound). */
async function until(condition: () => boolean): Promise<void> {
  await pollUntil(
    async () => condition(),
    (holds) => holds,
    { timeoutMs: 120_000, intervalMs: 5 },
  );
}

describe('ExtractionSync', () => {
  it('syncs each member once the next one is named, in order, one at a time', async () => {
    const syncs = controlledSyncs();
    const writeback = new ExtractionSync(syncs.syncMember, 60_000);
    writeback.memberStarted('base/1/1');
    // Nothing complete yet: the member in progress is flushed.
    expect(await syncs.settleNext()).toBe('base/1/1');
    writeback.memberStarted('base/1/2');
    writeback.memberStarted('base/1/3');
    expect(await syncs.settleNext()).toBe('base/1/1');
    expect(syncs.pending.map((sync) => sync.member)).toEqual(['base/1/2']);
    expect(await syncs.settleNext()).toBe('base/1/2');
    // Complete members done: the one tar is writing (base/1/3) is flushed next.
    expect(await syncs.settleNext()).toBe('base/1/3');
    const stopped = writeback.stop();
    await stopped;
    expect(syncs.pending).toHaveLength(0);
    expect(writeback.syncs).toBe(4);
  });

  it('flushes the member in progress again when tar names nothing new for a while', async () => {
    const syncs = controlledSyncs();
    const writeback = new ExtractionSync(syncs.syncMember, 10);
    writeback.memberStarted('base/1/big');
    await syncs.settleNext();
    await syncs.settleNext();
    expect(syncs.calls.slice(0, 2)).toEqual(['base/1/big', 'base/1/big']);
    const stopping = writeback.stop();
    for (const sync of syncs.pending.splice(0)) sync.settle();
    await stopping;
  });

  it('ignores failed syncs (best effort) and stop() waits for the sync in flight', async () => {
    const syncs = controlledSyncs();
    const writeback = new ExtractionSync(syncs.syncMember, 60_000);
    writeback.memberStarted('pg_tblspc/16400');
    writeback.memberStarted('base/1/1');
    let stopped = false;
    const stopping = writeback.stop().then(() => (stopped = true));
    // Everything already settled has run (promise jobs and I/O callbacks, several turns over): stop() is still waiting.
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    await syncs.settleNext(new Error('ELOOP'));
    await stopping;
    // stop() dropped what was queued: the caller syncs the whole file system anyway.
    expect(syncs.calls).toEqual(['pg_tblspc/16400']);
    writeback.memberStarted('base/1/2');
    expect(syncs.calls).toEqual(['pg_tblspc/16400']);
  });

  it('fdatasyncs files and directories of the extraction directory, never through a symlink', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'extraction-sync-'));
    try {
      await writeFile(join(directory, 'file'), 'data');
      await symlink('/nonexistent-target', join(directory, 'link'));
      const writeback = ExtractionSync.inDirectory(directory, 60_000);
      writeback.memberStarted('file');
      writeback.memberStarted('link');
      writeback.memberStarted('.');
      await until(() => writeback.syncs >= 3);
      await writeback.stop();
      // file twice (in progress, then complete), '.' once; the symlink's sync failed (ELOOP).
      expect(writeback.syncs).toBe(3);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
