import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { EventLedger } from '@rookery/catalog';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { longestScheduleGapSeconds } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { configureServiceApp } from '@rookery/service-kit';
import { CONTENT_DATABASE, TestCluster, pollUntil, seedContent, startBackupService, startCluster } from '@rookery/testing';
import { ContentBackupModule } from './content-backup.module';

jest.setTimeout(600_000);

const root = resolve(__dirname, '..', '..', '..', '..');

/** `name{labels} value` lines of a Prometheus text exposition, keyed by `name{labels}` as printed. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    found.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return found;
}

/**
 * GET /metrics of a running content-backup service after a backup the CLI took (another process):
 * the objectives read from the repository and the catalog, not only this process's counters.
 */
describe('content-backup /metrics: recovery objectives (real PostgreSQL, a CLI backup, the catalog ledger)', () => {
  let cluster: TestCluster;
  let work: string;
  let configFile: string;
  let config: RookeryConfig;
  let app: INestApplication;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-content-metrics-'));
    // The oltp tier's server archives (to nowhere: pg_stat_archiver is what its WAL lag is read from).
    cluster = await startCluster({ name: 'content-metrics', settings: { archive_mode: 'on', archive_command: '/bin/true' } });
    await seedContent(cluster.url, { sizeMb: 2, seed: 3 });
    configFile = join(work, 'rookery.yaml');
    await writeFile(
      configFile,
      [
        `repositories: ['file://${join(work, 'repository')}', 'file://${join(work, 'region-eu')}']`,
        `catalog: { url: 'sqlite://${join(work, 'catalog.sqlite')}' }`,
        `tiers: { content: { pgUrl: '${cluster.urlFor(CONTENT_DATABASE)}' }, oltp: { pgUrl: '${cluster.url}', policy: { regions: [local, eu] } } }`,
        'service: { host: 127.0.0.1, port: 0 }',
        'auth: { mode: none }',
        '',
      ].join('\n'),
    );
    config = loadConfig({ configFile }, {});
    app = await startBackupService(ContentBackupModule.forRoot, config, (service) =>
      configureServiceApp(service, { title: 'content-backup (test)', description: 'test' }),
    );
  });

  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  function rookery(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(process.execPath, [join(root, 'bin', 'rookery.js'), ...args, '--config', configFile], { cwd: root, encoding: 'utf8' });
  }

  async function scrape(): Promise<{ text: string; values: Map<string, number>; before: number; after: number }> {
    const before = Date.now() / 1000;
    const response = await request(app.getHttpServer()).get('/metrics').expect(200);
    return { text: response.text, values: samples(response.text), before, after: Date.now() / 1000 };
  }

  it('after a CLI backup: last success and RPO exposure from the repository, objectives from the policy', async () => {
    const cli = rookery('backup', '--tier', 'content', '--json');
    expect(cli.stderr.split('\n').filter((line) => /error/i.test(line))).toEqual([]);
    expect(cli.status).toBe(0);
    const finishedAt = new Date((JSON.parse(cli.stdout) as { finishedAt: string }).finishedAt).getTime() / 1000;

    const { values, before, after } = await scrape();
    const policy = config.tiers.content.policy;
    expect(values.get('rookery_backup_last_success_timestamp_seconds{tier="content"}')).toBe(finishedAt);
    const exposure = values.get('rookery_rpo_exposure_seconds{tier="content"}') as number;
    expect(exposure).toBeGreaterThanOrEqual(before - finishedAt);
    expect(exposure).toBeLessThanOrEqual(after - finishedAt);
    expect(values.get('rookery_rpo_objective_seconds{tier="content"}')).toBe(policy.rpoSeconds);
    expect(values.get('rookery_rto_objective_seconds{tier="content"}')).toBe(policy.rtoSeconds);
    expect(values.get('rookery_backup_schedule_interval_seconds{tier="content"}')).toBe(
      longestScheduleGapSeconds([policy.fullSchedule, policy.incrementalSchedule]),
    );
    // A logical tier archives no WAL: no WAL lag series for it.
    expect(values.has('rookery_wal_archive_lag_segments{tier="content"}')).toBe(false);
  });

  it('WAL archive lag of a physical tier: the numbers of its WAL status', async () => {
    await cluster.query('create table if not exists wal_filler as select generate_series(1, 1000) as n');
    await cluster.query('select pg_switch_wal()');
    await pollUntil(
      async () => (await cluster.query<{ archived: string }>('select archived_count as archived from pg_stat_archiver'))[0].archived,
      (archived) => Number(archived) > 0,
      { what: 'the oltp server to archive a segment' },
    );
    const engine = app.get(RookeryEngine);
    const status = await engine.walStatus('oltp');
    const { values } = await scrape();
    expect(status.server?.lagSegments).toEqual(expect.any(Number));
    expect(values.get('rookery_wal_archive_lag_segments{tier="oltp"}')).toBe(status.server?.lagSegments);
    expect(values.get('rookery_wal_archive_lag_seconds{tier="oltp"}')).toBe(status.exposure?.seconds);
  });

  it('replication lag per region: a WAL segment the region lacks, then none after rookery replicate', async () => {
    const [{ name }] = await cluster.query<{ name: string }>('select last_archived_wal as name from pg_stat_archiver');
    expect(rookery('wal-push', join(cluster.dataDir, 'pg_wal', name), '--tier', 'oltp').status).toBe(0);
    const behind = (await scrape()).values;
    expect(behind.get('rookery_replication_wal_missing_files{tier="oltp",region="eu"}')).toBe(1);
    expect(behind.get('rookery_replication_wal_lag_seconds{tier="oltp",region="eu"}')).toBeGreaterThanOrEqual(0);
    expect(rookery('replicate', '--tier', 'oltp').status).toBe(0);
    const current = (await scrape()).values;
    expect(current.get('rookery_replication_wal_missing_files{tier="oltp",region="eu"}')).toBe(0);
    expect(current.get('rookery_replication_wal_lag_seconds{tier="oltp",region="eu"}')).toBe(0);
  });

  it('last validation and last drill from the catalog ledger (recorded by the validator, another process)', async () => {
    const ledger = await EventLedger.open(config.catalog.url);
    try {
      await ledger.append([
        {
          eventId: 'v1',
          subject: 'content',
          type: 'dev.rookery.validation.passed',
          time: '2026-12-01T01:00:00.000Z',
          source: 'rookery/validator',
          data: { validatedAt: '2026-12-01T01:00:00.000Z' },
        },
        {
          eventId: 'v2',
          subject: 'content',
          type: 'dev.rookery.validation.failed',
          time: '2026-12-02T01:00:00.000Z',
          source: 'rookery/validator',
          data: { validatedAt: '2026-12-02T01:00:00.000Z' },
        },
        {
          eventId: 'd1',
          subject: 'content',
          type: 'dev.rookery.drill.completed',
          time: '2026-12-03T06:00:00.000Z',
          source: 'rookery/validator',
          data: { ok: true, restoreMs: 2_500, withinRto: true, finishedAt: '2026-12-03T06:00:00.000Z' },
        },
      ]);
    } finally {
      await ledger.close();
    }
    const { values } = await scrape();
    expect(values.get('rookery_validation_last_timestamp_seconds{tier="content"}')).toBe(Date.parse('2026-12-02T01:00:00.000Z') / 1000);
    expect(values.get('rookery_validation_last_success{tier="content"}')).toBe(0);
    expect(values.get('rookery_drill_last_timestamp_seconds{tier="content"}')).toBe(Date.parse('2026-12-03T06:00:00.000Z') / 1000);
    expect(values.get('rookery_drill_last_success{tier="content"}')).toBe(1);
    expect(values.get('rookery_drill_last_duration_seconds{tier="content"}')).toBe(2.5);
    expect(values.get('rookery_drill_last_within_rto{tier="content"}')).toBe(1);
  });

  it('process metrics carry one prefix, and every series the alert rules read is served', async () => {
    const { text, values } = await scrape();
    expect(text).not.toContain('rookery_process_process_');
    expect([...values.keys()].some((key) => key.startsWith('rookery_process_cpu_user_seconds_total'))).toBe(true);
    const rules = readFileSync(join(root, 'docker', 'prometheus', 'rookery-alerts.yml'), 'utf8');
    const referenced = new Set([...rules.matchAll(/\b(rookery_[a-z_]+)\b/g)].map((match) => match[1]));
    const served = new Set([...values.keys()].map((key) => key.replace(/\{.*$/, '')));
    expect([...referenced].filter((name) => !served.has(name))).toEqual([]);
  });
});
