import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

jest.setTimeout(300_000);

/** README command 1 through the real CLI, on a small seed: backup, restore, compare, an incremental restored as a chain, embedded evidence. */
const root = resolve(__dirname, '..', '..', '..');

describe('rookery demo', () => {
  it('backs up, restores, compares every table and reports the tier through the embedded control plane', () => {
    const result = spawnSync(process.execPath, [join(root, 'bin', 'rookery.js'), 'demo', '--size-mb', '12'], {
      cwd: root,
      env: { ...process.env, ROOKERY_CONFIG: '', ROOKERY_KAFKA_BROKERS: '' },
      encoding: 'utf8',
      timeout: 280_000,
    });
    expect(result.stderr).not.toMatch(/^rookery: /m);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^all \d+ tables identical after restore$/m);
    expect(result.stdout).not.toContain('DIFFERENT');
    // A block-level incremental after a day's worth of changes, restored as a chain.
    expect(result.stdout).toMatch(/^incremental \d{8}T\d{6}Z-oltp(-\d+)? \(parent \d{8}T\d{6}Z-oltp\): \d+ of \d+ pages changed, /m);
    expect(result.stdout).toMatch(
      /^all \d+ tables identical after restoring the chain \(the full extracted, the incremental's pages written in place/m,
    );
    expect(result.stdout).toMatch(/^catalog \(SQLite\): backup recorded; 4 events relayed/m);
    expect(result.stdout).toMatch(/^compliance \(oltp\): status ok; last good full \d{8}T\d{6}Z-oltp \(validated\)/m);
  });
});
