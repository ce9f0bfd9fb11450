import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { TierName } from '@rookery/core';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { CONTENT_DATABASE, TestCluster, seedContent, startCluster } from '@rookery/testing';
import { RestoreDrill } from './restore.drill';
import { createValidationTools } from './validation.tools';

jest.setTimeout(300_000);

/**
 * The drill promise on the two tiers apps/validator's spec does not drill: the content tier
 * (logical dumps into a scratch cluster) and the queue tier (a physical base backup started in a
 * scratch data directory) each restore their latest backup from a filesystem repository, pass the
 * data checks, report a positive restore duration within the tier's default RTO, and leave
 * nothing behind in the drill's work directory.
 */
describe('restore drills of the content and queue tiers', () => {
  let source: TestCluster;
  let work: string;
  let drills: string;
  let engine: RookeryEngine;
  let drill: RestoreDrill;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-drill-spec-'));
    // The restored physical copy runs as the postgres account: it must reach the drill directory.
    await chmod(work, 0o711);
    drills = join(work, 'drills');
    await mkdir(drills, { mode: 0o711 });
    await chmod(drills, 0o711);
    source = await startCluster({ name: 'drill-source' });
    await seedContent(source.url, { sizeMb: 2, seed: 7 });
    // The queue tier's cluster: a small jobs table in its own database.
    await source.query('create database queue');
    await source.query(
      `create table jobs (id bigserial primary key, payload text not null);
       insert into jobs (payload) select 'job ' || g from generate_series(1, 5000) g`,
      [],
      'queue',
    );
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repo')}`],
        tiers: { content: { pgUrl: source.urlFor(CONTENT_DATABASE) }, queue: { pgUrl: source.urlFor('queue') } },
      },
      'drill int-spec',
    );
    engine = await createEngine(config, { actor: 'test' });
    drill = new RestoreDrill(engine, createValidationTools(engine.toolkit, { workDirectory: drills }));
  }, 240_000);

  afterAll(async () => {
    await engine?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it.each<[TierName, 'logical' | 'physical', string]>([
    ['content', 'logical', 'dump'],
    ['queue', 'physical', 'backup-end'],
  ])(
    'drills the %s tier (%s): restores, checks the data, reports a duration within the default RTO, cleans up',
    async (tier, method, recovery) => {
      const backup = await engine.backup({ tier });
      expect(backup.method).toBe(method);

      const report = await drill.run(tier);

      expect(report).toMatchObject({ backupId: backup.id, tier, method, ok: true, withinRto: true, recovery });
      expect(report.checks.filter((check) => !check.ok)).toEqual([]);
      expect(report.checks.map((check) => check.name)).toEqual(['restore', 'not in recovery', 'tables readable', 'data present']);
      expect(report.restoreMs).toBeGreaterThan(0);
      expect(report.totalMs).toBeGreaterThanOrEqual(report.restoreMs);
      expect(report.rtoSeconds).toBe(engine.config.tiers[tier].policy.rtoSeconds);
      // The restored copy held the seeded rows (not merely some catalog rows).
      expect(report.checks.find((check) => check.name === 'data present')?.detail).toMatch(/^\d+ rows$/);
      // Scratch data directory or scratch cluster: stopped and removed.
      expect(await readdir(drills)).toEqual([]);
    },
  );
});
