import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest, IncrementalChainError, IntegrityError, isVisibleInSnapshot, parsePgSnapshot } from '@rookery/core';
import { PgSession, PgSqlClient } from '@rookery/postgres';
import {
  CONTENT_DATABASE,
  TableChecksums,
  TestCluster,
  acquireS3,
  diffTableChecksums,
  pollUntil,
  seedContent,
  startCluster,
  userTableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

jest.setTimeout(300_000);

/** Rows a concurrent writer owns: ids from here on, one million per writer. */
const WRITER_IDS = 10_000_000;

/**
 * Content incrementals: full + chain restores to the source as it was at each backup, with
 * inserts, updates (bytea bodies too) and FK-respecting deletes between them; a writer committing
 * while an incremental reads loses and duplicates nothing; a damaged link stops the restore.
 */
describe('content incrementals', () => {
  let source: TestCluster;
  let target: TestCluster;
  let engine: RookeryEngine;
  let work: string;
  const sql = new PgSqlClient({ applicationName: 'rookery-test' });
  const chain: { manifest: BackupManifest; sums: TableChecksums }[] = [];
  const content = () => source.urlFor(CONTENT_DATABASE);
  const run = (statement: string, params: unknown[] = []) => source.query(statement, params, CONTENT_DATABASE);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-incremental-'));
    [source, target] = await Promise.all([startCluster({ name: 'incremental-source' }), startCluster({ name: 'incremental-target' })]);
    await seedContent(source.url, { sizeMb: 3, seed: 7 });
    const s3 = await acquireS3('primary');
    const bucket = `incremental-${randomBytes(3).toString('hex')}`;
    await s3.createBucket(bucket);
    engine = await engineFor(`s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`);
  }, 240_000);

  afterAll(async () => {
    await engine?.close();
    await Promise.all([source?.destroy(), target?.destroy()]);
    await rm(work, { recursive: true, force: true });
  });

  async function engineFor(repository: string): Promise<RookeryEngine> {
    const config = buildConfig(
      {
        repositories: [repository],
        tiers: { content: { pgUrl: source.urlFor(CONTENT_DATABASE), policy: { logical: { compression: { codec: 'zstd', level: 3 } } } } },
      },
      'test',
      {},
      {},
    );
    return createEngine(config, { actor: 'test' });
  }

  async function backup(type: 'full' | 'incremental'): Promise<BackupManifest> {
    const manifest = await engine.backup({ tier: 'content', type });
    chain.push({ manifest, sums: await userTableChecksums(content()) });
    return manifest;
  }

  async function restored(manifest: BackupManifest, database: string): Promise<TableChecksums> {
    await engine.restore({ tier: 'content', backup: manifest.id, targetUrl: target.urlFor(database) });
    return userTableChecksums(target.urlFor(database));
  }

  it('refuses an incremental without a full to chain to', async () => {
    const empty = await engineFor(`file://${join(work, 'empty')}`);
    try {
      const refused = empty.backup({ tier: 'content', type: 'incremental' });
      await expect(refused).rejects.toBeInstanceOf(IncrementalChainError);
      await expect(refused).rejects.toThrow(/tier 'content' has no backup to chain an incremental to/);
    } finally {
      await empty.close();
    }
  });

  it('restores the full and each incremental to the source at its own time', async () => {
    const full = await backup('full');
    expect(full.logical?.changeTracking?.installation).toEqual(expect.any(String));
    const [{ max }] = await run('select max(id)::bigint as max from content_objects');
    const next = Number(max) + 1;

    // Between the full and the first incremental.
    await run(
      `insert into content_objects (id, organisation_id, template_id, message_id, subject, body_text, body_html, raw_mime, size_bytes, created_at, updated_at)
               select g, 1, null, 'new-' || g, 'new subject ' || g, 'body', '<p>body</p>', '\\x00ff'::bytea, 10, now(), now() from generate_series($1::bigint, $1::bigint + 4) g`,
      [next],
    );
    await run('insert into attachments values ($1, $2, $3, $4, $5, $6, $7, now())', [
      990_001,
      next,
      'a.pdf',
      'application/pdf',
      100,
      Buffer.from('sha'),
      'k',
    ]);
    await run(`insert into object_tags values ($1, 'fresh')`, [next]);
    await run(`update content_objects set subject = 'first edit' where id = 2`);
    await run(`update content_objects set subject = 'second edit', updated_at = now() where id = 2`);
    await run(
      `update content_objects set raw_mime = raw_mime || '\\xdeadbeef'::bytea, body_html = body_html || '<!-- v2 -->' where id in (3, 4)`,
    );
    await run(
      'insert into content_objects select $1::bigint, organisation_id, template_id, message_id || $1::text, subject, body_text, body_html, raw_mime, size_bytes, created_at, updated_at from content_objects where id = 5',
      [next + 100],
    );
    await run('delete from content_objects where id = $1', [next + 100]);
    // FK-respecting delete of an object with its attachments and tags.
    await run('delete from object_tags where content_object_id = 6');
    await run('delete from attachments where content_object_id = 6');
    await run('delete from content_objects where id = 6');
    await run(`update templates set name = name || ' (renamed)' where id = 1`);
    await run(`select nextval('content_objects_id_seq')`);
    const first = await backup('incremental');
    expect(first.parent).toBe(full.id);
    expect(first.artifacts.map((artifact) => [artifact.name, artifact.kind])).toEqual([['changes.sql.zst', 'changeset']]);
    expect(first.logical?.changes?.tables).toEqual(
      expect.arrayContaining([
        { table: 'public.content_objects', mode: 'keys', keys: 10, rows: 8 },
        { table: 'public.object_tags', mode: 'whole', keys: 0, rows: expect.any(Number) },
      ]),
    );

    // Between the two incrementals: touch rows the first one carried, and delete one it inserted.
    await run(`update content_objects set subject = 'third edit', raw_mime = '\\x01'::bytea where id = 2`);
    await run('delete from object_tags where content_object_id = $1', [next]);
    await run('delete from attachments where content_object_id = $1', [next]);
    await run('delete from content_objects where id = $1', [next]);
    await run(`update content_objects set body_text = 'rewritten' where id between 10 and 20`);
    await run(`update templates set name = 'template two' where id = 2`);
    const second = await backup('incremental');
    expect(second.parent).toBe(first.id);

    for (const [index, point] of chain.entries()) {
      const sums = await restored(point.manifest, `point_${index}`);
      expect({ point: index, differences: diffTableChecksums(point.sums, sums) }).toEqual({ point: index, differences: [] });
    }
    const [sequence] = await target.query<{ last: string }>('select last_value::text as last from content_objects_id_seq', [], 'point_2');
    const [expected] = await run('select last_value::text as last from content_objects_id_seq');
    expect(sequence.last).toBe(expected.last);
    // The change log the source prunes after each backup holds nothing the last one saw.
    const [log] = await run('select count(*)::int as entries from rookery.change_log');
    expect(log.entries).toBe(0);
  });

  it('loses and duplicates nothing a writer commits while an incremental reads', async () => {
    // A transaction that wrote before the incremental's snapshot and commits after it: its id is
    // below the snapshot's xmax but it is not visible, so the next incremental must carry it.
    let releaseHeld: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (releaseHeld = resolve));
    let heldXid = '';
    const straddling = sql.withSession(content(), async (session) => {
      await session.query('begin');
      await session.query(insertWriterRow(WRITER_IDS - 1, 'held'));
      [{ xid: heldXid }] = await session.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
      await held;
      await session.query('commit');
    });
    await pollUntil(
      async () => heldXid,
      (xid) => xid !== '',
      { what: 'the held transaction' },
    );

    const writers = [0, 1].map((writer) => new Writer(sql, content(), WRITER_IDS + writer * 1_000_000));
    const writing = writers.map((writer) => writer.run());
    await pollUntil(async () => writers.every((writer) => writer.committed.length >= 3), Boolean, { what: 'writers under way' });

    let done = false;
    const incremental = backup('incremental').finally(() => (done = true));
    // Once the incremental's session holds its snapshot, the held transaction commits.
    await pollUntil(
      async () =>
        done ||
        (
          await sql.query<{ n: string }>(
            content(),
            `select count(*) as n from pg_stat_activity where application_name = 'rookery' and backend_xmin is not null and state = 'idle in transaction'`,
          )
        )[0].n !== '0',
      Boolean,
      { what: 'the incremental snapshot', intervalMs: 5 },
    );
    releaseHeld();
    await straddling;
    const during = await incremental;
    for (const writer of writers) writer.stop();
    await Promise.all(writing);

    const snapshot = parsePgSnapshot(during.logical?.changeTracking?.snapshot ?? '');
    expect(snapshot.xip).toContain(BigInt(heldXid));
    // The source as of the incremental's snapshot: untouched rows as before, and each writer's
    // rows as its transactions visible in that snapshot (a prefix of them) left them.
    const database = 'during_writers';
    await engine.restore({ tier: 'content', backup: during.id, targetUrl: target.urlFor(database) });
    const rows = await target.query<{ id: string; subject: string }>(
      `select id::text as id, subject from content_objects where id >= $1 order by id`,
      [WRITER_IDS - 1],
      database,
    );
    const expected = new Map<string, string>();
    for (const writer of writers) for (const [id, subject] of writer.stateAt(snapshot)) expected.set(id, subject);
    expect(Object.fromEntries(rows.map((row) => [row.id, row.subject]))).toEqual(Object.fromEntries([...expected].sort()));
    expect(writers.every((writer) => writer.committed.some((txn) => !isVisibleInSnapshot(BigInt(txn.xid), snapshot)))).toBe(true);

    // The next incremental carries the held transaction and every writer commit after the snapshot.
    const after = await backup('incremental');
    expect(diffTableChecksums(chain.at(-1)?.sums ?? {}, await restored(after, 'after_writers'))).toEqual([]);
  });

  it('stops at a corrupted incremental in the middle of the chain, naming it, leaving no database', async () => {
    const middle = chain[1].manifest;
    const artifact = middle.artifacts[0];
    const store = engine.context.repository.store;
    const key = engine.context.repository.artifactKey(middle, artifact.name);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.read(key)) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
    await store.write(key, bytes);

    const database = 'corrupt_chain';
    const restore = engine.restore({ tier: 'content', backup: chain[2].manifest.id, targetUrl: target.urlFor(database) });
    await expect(restore).rejects.toBeInstanceOf(IntegrityError);
    await expect(restore).rejects.toThrow(
      new RegExp(`artifact 'changes\\.sql\\.zst'.*incremental backup '${middle.id}', 1 of 2 in the chain`),
    );
    const [exists] = await target.query<{ exists: boolean }>('select exists (select 1 from pg_database where datname = $1) as exists', [
      database,
    ]);
    expect(exists.exists).toBe(false);
    const verified = await engine.verify('content', middle.id);
    expect(verified.ok).toBe(false);
  });

  it('refuses an incremental after a schema change, telling the operator to take a full', async () => {
    await run('alter table templates add column archived boolean');
    const refused = engine.backup({ tier: 'content', type: 'incremental' });
    await expect(refused).rejects.toBeInstanceOf(IncrementalChainError);
    await expect(refused).rejects.toThrow(/the schema of database 'penguinmails_content' changed since backup/);
    await expect(refused).rejects.toMatchObject({ hint: expect.stringMatching(/rookery backup --tier content --type full/) });
  });
});

function insertWriterRow(id: number, subject: string): string {
  return `insert into content_objects (id, organisation_id, message_id, subject, body_text, body_html, raw_mime, size_bytes, created_at, updated_at)
          values (${id}, 1, 'writer-${id}', '${subject}', 'w', 'w', '\\x00'::bytea, 1, now(), now())`;
}

/**
 * Commits small transactions one after another on rows of its own: insert two, update one it
 * inserted before, delete another. Records each committed transaction's xid and the rows it left.
 */
class Writer {
  readonly committed: { xid: string; rows: Map<string, string> }[] = [];
  private stopped = false;

  constructor(
    private readonly sql: PgSqlClient,
    private readonly url: string,
    private readonly base: number,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    await this.sql.withSession(this.url, async (session) => {
      let rows = new Map<string, string>();
      for (let n = 0; !this.stopped; n++) {
        const next = new Map(rows);
        await session.query('begin');
        const [{ xid }] = await session.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
        for (const id of [this.base + 2 * n, this.base + 2 * n + 1]) {
          await session.query(insertWriterRow(id, `v0 by ${xid}`));
          next.set(String(id), `v0 by ${xid}`);
        }
        await this.mutate(session, next, n, xid);
        // Held open a moment on purpose: a backup's snapshot then often falls inside a transaction.
        await session.query('select pg_sleep(0.01)');
        await session.query('commit');
        rows = next;
        this.committed.push({ xid, rows });
      }
    });
  }

  /** The writer's rows as the transactions visible in `snapshot` left them. */
  stateAt(snapshot: ReturnType<typeof parsePgSnapshot>): Map<string, string> {
    const visible = this.committed.filter((txn) => isVisibleInSnapshot(BigInt(txn.xid), snapshot));
    return visible.at(-1)?.rows ?? new Map();
  }

  private async mutate(session: PgSession, rows: Map<string, string>, n: number, xid: string): Promise<void> {
    const live = [...rows.keys()].filter((id) => Number(id) < this.base + 2 * n);
    if (live.length < 2) return;
    const updated = live[n % live.length];
    await session.query(`update content_objects set subject = $2, raw_mime = raw_mime || '\\x01'::bytea where id = $1`, [
      updated,
      `v${n} by ${xid}`,
    ]);
    rows.set(updated, `v${n} by ${xid}`);
    const deleted = live.find((id) => id !== updated) as string;
    await session.query('delete from content_objects where id = $1', [deleted]);
    rows.delete(deleted);
  }
}
