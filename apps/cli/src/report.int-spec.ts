import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EventLedger } from '@rookery/catalog';

/** `rookery report` through the real CLI, over a ledger in a real SQLite catalog database. */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

function rookery(args: string[], catalogUrl: string) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, ROOKERY_CATALOG_URL: catalogUrl, ROOKERY_CONFIG: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rookery report', () => {
  let work: string;
  let catalogUrl: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-report-'));
    catalogUrl = `sqlite://${join(work, 'catalog.sqlite')}`;
    const ledger = await EventLedger.open(catalogUrl);
    const finishedAt = new Date(Date.now() - 3_600_000).toISOString();
    await ledger.append([
      {
        eventId: 'e1',
        type: 'dev.rookery.backup.completed',
        subject: 'olap',
        source: 'rookery/test',
        time: finishedAt,
        data: {
          backupId: '20261126T040000Z-olap',
          tier: 'olap',
          type: 'full',
          finishedAt,
          storedBytes: 10,
          retentionUntil: '2027-11-26T04:00:00.000Z',
        },
      },
      {
        eventId: 'e3',
        type: 'dev.rookery.validation.passed',
        subject: 'olap',
        source: 'rookery/test',
        time: finishedAt,
        data: { backupId: '20261126T040000Z-olap', tier: 'olap', checks: [], validatedAt: finishedAt },
      },
      {
        eventId: 'e2',
        type: 'dev.rookery.drill.completed',
        subject: 'olap',
        source: 'rookery/test',
        time: finishedAt,
        data: { backupId: '20261126T040000Z-olap', restoreMs: 60_000, rtoSeconds: 7200, withinRto: true, ok: true, finishedAt },
      },
    ]);
    await ledger.close();
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('exports CSV, Markdown and JSON per tier from the ledger', async () => {
    const csv = rookery(['report', '--format', 'csv'], catalogUrl);
    expect(csv.stderr).toBe('');
    expect(csv.status).toBe(0);
    const rows = csv.stdout.trim().split('\r\n');
    expect(rows).toHaveLength(5);
    expect(rows.find((row) => row.startsWith('olap,'))).toMatch(/^olap,ok,20261126T040000Z-olap,/);

    const out = join(work, 'report.md');
    expect(rookery(['report', '--tier', 'olap', '--out', out], catalogUrl).status).toBe(0);
    const markdown = await readFile(out, 'utf8');
    expect(markdown).toMatch(/^\| olap \| OK \| 20261126T040000Z-olap/m);
    expect(markdown).not.toMatch(/^\| oltp /m);

    // No content evidence at all: said so, with the policy finding, rather than "failing".
    const json = JSON.parse(rookery(['report', '--format', 'json', '--tier', 'content'], catalogUrl).stdout) as {
      tiers: { tier: string; status: string; lint: unknown[] }[];
    };
    expect(json.tiers).toEqual([
      expect.objectContaining({
        tier: 'content',
        status: 'unknown',
        missing: ['no backup recorded', 'no validation recorded', 'no drill recorded'],
        lint: [expect.objectContaining({ rule: 'rpo-schedule', severity: 'error', acknowledged: null })],
      }),
    ]);
  });

  it('shows a policy-lint finding without failing the tier, and the acknowledgement an operator configured', async () => {
    const ledger = await EventLedger.open(catalogUrl);
    const finishedAt = new Date(Date.now() - 600_000).toISOString();
    const backupId = '20261126T040000Z-content';
    const entry = (eventId: string, type: string, data: Record<string, unknown>) => ({
      eventId,
      type,
      subject: 'content',
      source: 'rookery/test',
      time: finishedAt,
      data,
    });
    await ledger.append([
      entry('c1', 'dev.rookery.backup.completed', {
        backupId,
        tier: 'content',
        type: 'full',
        finishedAt,
        storedBytes: 10,
        retentionUntil: '2027-11-26T04:00:00.000Z',
      }),
      entry('c2', 'dev.rookery.validation.passed', { backupId, tier: 'content', checks: [], validatedAt: finishedAt }),
      entry('c3', 'dev.rookery.drill.completed', { backupId, restoreMs: 60_000, rtoSeconds: 1800, withinRto: true, ok: true, finishedAt }),
    ]);
    await ledger.close();

    const shown = rookery(['report', '--tier', 'content'], catalogUrl);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/^\| content \| ATTENTION \| 20261126T040000Z-content/m);
    expect(shown.stdout).toContain(
      '- Policy lint: error rpo-schedule: the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h.',
    );

    const config = join(work, 'acknowledged.yaml');
    await writeFile(
      config,
      'tiers:\n  content:\n    policy:\n      acknowledge:\n        - rule: rpo-schedule\n          reason: content objects are re-creatable; 4 h accepted\n',
    );
    const acknowledged = rookery(['report', '--tier', 'content', '--config', config], catalogUrl);
    expect(acknowledged.status).toBe(0);
    expect(acknowledged.stdout).toMatch(/^\| content \| OK \| 20261126T040000Z-content/m);
    expect(acknowledged.stdout).toContain('(acknowledged: content objects are re-creatable; 4 h accepted).');

    await writeFile(config, 'tiers:\n  content:\n    policy:\n      acknowledge:\n        - rule: rpo-schedul\n          reason: typo\n');
    const typo = rookery(['report', '--tier', 'content', '--config', config], catalogUrl);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/tiers\.content\.policy\.acknowledge\.0\.rule/);
  });

  it('refuses to report from an empty ledger (a config pointing elsewhere) with exit 2 and one line', () => {
    const result = rookery(['report'], `sqlite://${join(work, 'elsewhere.sqlite')}`);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      `rookery: the compliance ledger in sqlite://${join(work, 'elsewhere.sqlite')} holds no events: nothing to report (hint: point catalog.url (ROOKERY_CATALOG_URL) at the database compliance-reporting writes, or record the repository's backups with rookery catalog rebuild)`,
    ]);
  });

  it('refuses a malformed period with exit 2 and one line', () => {
    const result = rookery(['report', '--since', 'last tuesday'], catalogUrl);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual(["rookery: --since must be an ISO-8601 time, got 'last tuesday'"]);
  });
});
