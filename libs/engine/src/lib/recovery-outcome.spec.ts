import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForPromotion } from './recovery-outcome';

const PROMOTED = [
  '2026-11-26 18:27:02.165 UTC [16299] LOG:  redo done at 0/4B000100 system usage: CPU: user: 0.00 s',
  '2026-11-26 18:27:02.358 UTC [16299] LOG:  selected new timeline ID: 2',
  '2026-11-26 18:27:02.497 UTC [16290] LOG:  database system is ready to accept connections',
].join('\n');

describe('waitForPromotion', () => {
  let dir: string;
  let logFile: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'promotion-'));
    logFile = join(dir, 'server.log');
    await writeFile(logFile, '2026-11-26 18:27:01.560 UTC [16299] LOG:  starting archive recovery\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  // How soon a promotion is seen is part of the restore's start time, measured by tools/bench/pitr.mjs.
  it('reads the log before it checks liveness (a process each): a promotion logged meanwhile is seen without another check', async () => {
    let livenessChecks = 0;
    // The server promotes while the first liveness check runs.
    const isRunning = async () => {
      if (livenessChecks++ === 0) await appendFile(logFile, `${PROMOTED}\n`);
      return true;
    };
    const outcome = await waitForPromotion({ logFile, isRunning, timeoutMs: 10 * 60_000 });
    expect(outcome).toMatchObject({ timeline: 2, endLsn: '0/4B000100' });
    expect(livenessChecks).toBe(1);
  });

  it('reports a server that stopped before promotion with the reason from its log', async () => {
    await appendFile(logFile, '2026-11-26 18:27:02.000 UTC [16299] FATAL:  recovery ended before configured recovery target was reached\n');
    await expect(waitForPromotion({ logFile, isRunning: async () => false, timeoutMs: 10_000 })).rejects.toThrow(
      'recovery failed: recovery ended before configured recovery target was reached',
    );
  });
});
