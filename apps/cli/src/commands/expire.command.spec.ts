import { ExpireResult } from '@rookery/engine';
import { Incomplete } from '../cli.outcome';
import { expireOutcome, requireNowNotAhead } from './expire.command';

/** The parts of an expire result the outcome reads: what was skipped, and the WAL the plan would have deleted. */
function result(skipped: ExpireResult['skipped'], walFiles: number): ExpireResult {
  const wal = Array.from({ length: walFiles }, (_, index) => ({ name: `00000001000000000000000${index}` }));
  return { tier: 'olap', skipped, plan: { expire: { wal } } } as unknown as ExpireResult;
}

describe('expire exit status', () => {
  it('a run that deleted everything it planned is complete', () => {
    expect(expireOutcome(result([], 3))).toBeUndefined();
  });

  it('a run stopped by a hold placed during it is incomplete, naming the held backup and what stayed', () => {
    const outcome = expireOutcome(
      result(
        [
          { id: 'b390', reason: 'placed under legal hold by ops during expire' },
          { id: 'b400', reason: 'not expired this run: backup b390 was placed under legal hold during expire' },
        ],
        3,
      ),
    );
    expect(outcome).toBeInstanceOf(Incomplete);
    expect(outcome?.summary).toBe(
      'expire of tier olap stopped: backup b390 was placed under legal hold by ops during expire; 1 more backup(s) and 3 WAL file(s) were not expired this run: run expire again',
    );
  });
});

describe('expire --now', () => {
  const clock = new Date('2026-12-07T04:00:00Z');

  it.each([
    ['no --now', undefined, false],
    ['the past, deleting', new Date('2026-01-01T00:00:00Z'), false],
    ['the clock itself, deleting', clock, false],
    ['the future, with --dry-run', new Date('2999-01-01T00:00:00Z'), true],
  ])('accepts %s', (_what, now, dryRun) => {
    expect(requireNowNotAhead(now, dryRun, clock)).toBe(now);
  });

  it('refuses a future time without --dry-run, as a usage error', () => {
    expect(() => requireNowNotAhead(new Date('2999-01-01T00:00:00Z'), false, clock)).toThrow(
      expect.objectContaining({
        family: 'config',
        message:
          '--now 2999-01-01T00:00:00.000Z is later than the clock (2026-12-07T04:00:00.000Z); a future time is accepted only with --dry-run',
      }),
    );
  });
});
