import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { randomBytes } from 'node:crypto';
import { buildConfig } from '@rookery/config';
import { BackupManifest, IntegrityError, Store, parseRecoveryTarget, parseWalFileName, sealManifest } from '@rookery/core';
import { lookupOsUser } from '@rookery/postgres';
import { BackupRepository, WalArchive, repositoryLayout, walLayout } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import {
  TableChecksums,
  TestCluster,
  diffTableChecksums,
  freeLoopbackPort,
  runRookery,
  s3TestRepository,
  startCluster,
  switchAndWaitArchived,
  tableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';
import { signingKeyringFor } from '@rookery/wal';

/**
 * Encryption is decided by the configuration, and an encrypted object is bound to its place
 * (issue 13, item 2). With a key configured, an attacker who can write the repository but has no
 * key tries what the manifest and the object names would let them: a plaintext backup's artifacts
 * in place of an encrypted backup's, an encrypted artifact of another backup of the tier, an
 * encrypted WAL segment under another segment's name, a plaintext WAL segment — each with the
 * manifest edited to match and its checksum recomputed. Every one is refused with an
 * IntegrityError naming the object; an ordinary encrypted backup and point-in-time recovery
 * through `rookery wal-get` still bring back the data. On a filesystem and an S3 repository.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const RESTORE_POINT = 'aead-test';

describe.each(['fs', 's3'] as const)('encryption enforced by the configuration (%s repository)', (kind) => {
  let source: TestCluster;
  let work: string;
  let spool: string;
  let repository: string;
  let encrypted: RookeryEngine;
  let plain: RookeryEngine;
  let store: Store;
  let layout: BackupRepository;
  let atPoint: TableChecksums;
  let older: BackupManifest;
  let newer: BackupManifest;
  let plaintext: BackupManifest;
  let configFile: string;
  const restored: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), `rookery-aead-${kind}-`));
    await chmod(work, 0o711);
    const postgresUser = lookupOsUser('postgres');
    // The server copies finished segments here; the test pushes them (so both stores see the same WAL).
    spool = join(work, 'spool');
    await mkdir(spool);
    await chown(spool, postgresUser.uid, postgresUser.gid);
    if (kind === 'fs') {
      const dir = join(work, 'repo');
      await mkdir(dir);
      await chown(dir, postgresUser.uid, postgresUser.gid);
      repository = `file://${dir}`;
    } else {
      repository = await s3TestRepository('aead');
    }
    // The key reaches the restore_command's `rookery wal-get` through a file only the server's account reads.
    const keyFile = join(work, 'key');
    await writeFile(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    await chown(keyFile, postgresUser.uid, postgresUser.gid);
    configFile = join(work, 'rookery.json');
    await writeFile(configFile, JSON.stringify({ repositories: [repository], encryption: { keyFile } }), { mode: 0o644 });

    source = await startCluster({ name: `aead-${kind}`, settings: { archive_mode: 'on', archive_command: `cp %p ${spool}/%f` } });
    await source.query('create table ledger (id int primary key, note text not null)');
    await source.query("insert into ledger select i, repeat('a', 100) from generate_series(1, 2000) i");

    encrypted = await createEngine(
      buildConfig({ repositories: [repository], encryption: { keyFile }, tiers: { oltp: { pgUrl: source.url } } }, 'test'),
      {
        actor: 'test',
        selfCommand: [process.execPath, bin, '--config', configFile],
      },
    );
    plain = await createEngine(buildConfig({ repositories: [repository], tiers: { oltp: { pgUrl: source.url } } }, 'test'), {
      actor: 'test',
    });
    store = createStore(repository);
    layout = new BackupRepository(store);

    older = await encrypted.backup({ tier: 'oltp' });
    plaintext = await plain.backup({ tier: 'oltp' });
    await source.query("insert into ledger select i, repeat('b', 100) from generate_series(2001, 4000) i");
    newer = await encrypted.backup({ tier: 'oltp' });
    await source.query("insert into ledger select i, repeat('c', 100) from generate_series(4001, 6000) i");
    atPoint = await tableChecksums(source.url);
    await source.query('select pg_create_restore_point($1)', [RESTORE_POINT]);
    await source.query("insert into ledger select i, repeat('d', 100) from generate_series(6001, 7000) i");
    await switchAndWaitArchived(source);
    await pushSpool();
  }, 300_000);

  afterAll(async () => {
    for (const dir of restored) await encrypted?.stopRestored(dir).catch(() => undefined);
    await encrypted?.close();
    await plain?.close();
    await store?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  /** Pushes every segment the server has archived so far through the encrypted engine. */
  async function pushSpool(): Promise<void> {
    for (const name of (await readdir(spool)).sort()) await encrypted.walPush('oltp', join(spool, name));
  }

  async function readObject(key: string): Promise<Buffer> {
    return buffer(await store.read(key));
  }

  /**
   * The manifest edited to match the objects put in place, its checksum recomputed and signed with
   * the repository's key: what a holder of the key, or a repository from before signing re-signed
   * by `repository sign`, would show. An attacker without the key is stopped earlier, by the
   * manifest's signature (manifest-signing.int-spec); these cases prove the objects' binding holds
   * on its own.
   */
  async function rewriteManifest(manifest: BackupManifest, artifacts: BackupManifest['artifacts']): Promise<void> {
    const signingKey = signingKeyringFor(encrypted.context.config)?.signing;
    if (!signingKey) throw new Error('the encrypted engine has no signing key');
    // sealManifest drops the old signature and checksum before it signs.
    const forged = sealManifest({ ...manifest, artifacts }, signingKey);
    await store.write(
      repositoryLayout.manifestKey(manifest.tier, manifest.id, new Date(manifest.startedAt)),
      Buffer.from(`${JSON.stringify(forged, null, 2)}\n`),
    );
  }

  it('restores an encrypted backup to a restore point, recovering through rookery wal-get, with identical data', async () => {
    expect(newer.artifacts.every((artifact) => artifact.encryption.algorithm === 'aes-256-gcm' && artifact.encryption.bound)).toBe(true);
    const dir = join(work, 'pitr');
    const port = await freeLoopbackPort();
    await encrypted.restore({
      tier: 'oltp',
      backup: newer.id,
      to: dir,
      start: true,
      port,
      target: parseRecoveryTarget({ targetName: RESTORE_POINT }),
      archiveMode: 'off',
    });
    restored.push(dir);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const after = await tableChecksums(url);
    expect(after['public.ledger']?.rows).toBe(6000);
    expect(diffTableChecksums(atPoint, after)).toEqual([]);
    await encrypted.stopRestored(dir);
  }, 240_000);

  it('refuses a plaintext backup placed where an encrypted one is expected, before the data directory is touched', async () => {
    for (const artifact of plaintext.artifacts) {
      await store.write(layout.artifactKey(older, artifact.name), await readObject(layout.artifactKey(plaintext, artifact.name)));
    }
    await rewriteManifest(older, plaintext.artifacts);
    const dir = join(work, 'forged-plaintext');
    const failure = encrypted.restore({ tier: 'oltp', backup: older.id, to: dir });
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(
      `artifact '${plaintext.artifacts[0].name}' of backup ${older.id} is not encrypted, and this repository requires encryption`,
    );
    expect(existsSync(dir)).toBe(false);
    // The plaintext backup as it was taken (by a rookery without the key) is refused too, by its unsigned manifest first.
    await expect(encrypted.restore({ tier: 'oltp', backup: plaintext.id, to: dir })).rejects.toThrow(/manifest '.*' is not signed/);
    expect(existsSync(dir)).toBe(false);
    const verified = await encrypted.verify('oltp', older.id);
    expect(verified.ok).toBe(false);
    expect(verified.artifacts[0].error?.message).toContain('is not encrypted, and this repository requires encryption');
  }, 120_000);

  it('refuses an encrypted artifact swapped in from another backup of the tier', async () => {
    // The newer backup's base tar under the older backup's name, the manifest's sizes and checksums adjusted to it.
    const [base] = newer.artifacts;
    await store.write(layout.artifactKey(older, base.name), await readObject(layout.artifactKey(newer, base.name)));
    const others = newer.artifacts.slice(1);
    for (const artifact of others) {
      await store.write(layout.artifactKey(older, artifact.name), await readObject(layout.artifactKey(newer, artifact.name)));
    }
    await rewriteManifest(older, newer.artifacts);
    const failure = encrypted.restore({ tier: 'oltp', backup: older.id, to: join(work, 'swapped-artifact') });
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(
      `cannot decrypt artifact '${base.name}' of backup ${older.id}: segment 0 fails authentication: the object was encrypted for another place`,
    );
    const verified = await encrypted.verify('oltp', older.id);
    expect(verified.ok).toBe(false);
    expect(verified.artifacts[0].error?.message).toContain('encrypted for another place');
  }, 120_000);

  it("refuses an encrypted WAL segment stored under another segment's name, and a plaintext one; verify --wal --deep names both", async () => {
    const segments = (await new WalArchive(store).list('oltp')).filter((object) => object.file.kind === 'segment' && object.encrypted);
    expect(segments.length).toBeGreaterThanOrEqual(2);
    const [donor, victim] = segments.slice(-2);
    // The donor's bytes under the victim's name; the sha256 in the key is the donor's, which its content matches.
    await store.remove(victim.key);
    await store.write(walLayout.key('oltp', victim.file, donor.sha256, donor.codec, true), await readObject(donor.key));
    const failure = encrypted.walGet('oltp', victim.file.name, join(work, 'fetched-swapped'));
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(`cannot decrypt WAL file 'oltp/wal/`);
    await expect(failure).rejects.toThrow(`${victim.file.name}-${donor.sha256}`);
    await expect(failure).rejects.toThrow('segment 0 fails authentication: the object was encrypted for another place');
    expect(existsSync(join(work, 'fetched-swapped'))).toBe(false);

    // A segment the server has not archived yet, pushed in plaintext (as a repository without the key would).
    await source.query("insert into ledger select i, repeat('e', 100) from generate_series(7001, 7100) i");
    await switchAndWaitArchived(source);
    const newest = (await readdir(spool))
      .sort()
      .filter((name) => parseWalFileName(name)?.kind === 'segment')
      .at(-1) as string;
    await plain.walPush('oltp', join(spool, newest));
    const plainFailure = encrypted.walGet('oltp', newest, join(work, 'fetched-plain'));
    await expect(plainFailure).rejects.toBeInstanceOf(IntegrityError);
    await expect(plainFailure).rejects.toThrow(/WAL file 'oltp\/wal\/.*' is not encrypted, and this repository requires encryption/);
    expect(existsSync(join(work, 'fetched-plain'))).toBe(false);

    // verify --wal --deep reads the whole archive back: it names both, and every other file verifies.
    const verdicts = await encrypted.verifyWalArchive('oltp');
    expect(verdicts.filter((verdict) => !verdict.ok).map((verdict) => [verdict.name, verdict.problem])).toEqual([
      [victim.file.name, expect.stringContaining('fails authentication: the object was encrypted for another place')],
      [newest, expect.stringContaining('is not encrypted, and this repository requires encryption')],
    ]);
    expect(verdicts.filter((verdict) => verdict.ok).length).toBeGreaterThanOrEqual(1);
    const cli = runRookery(['verify', '--tier', 'oltp', '--wal', '--deep', '--config', configFile]);
    expect(cli.status).toBe(1);
    expect(cli.stdout).toContain(`FAILED   ${victim.file.name}: cannot decrypt WAL file`);
    expect(cli.stdout).toContain(`${verdicts.length - 2} of ${verdicts.length} archived WAL files read back and verified`);
    expect(cli.stderr).toContain(`2 archived WAL file(s) of tier 'oltp' failed verification, the first '${victim.file.name}'`);
    // Without --deep, continuity alone: the names are all there.
    expect(runRookery(['verify', '--tier', 'oltp', '--wal', '--config', configFile]).stdout).not.toContain('FAILED');
  }, 120_000);
});
