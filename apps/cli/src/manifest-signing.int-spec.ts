import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupManifest, Store, UnsignedManifest, signManifest } from '@rookery/core';
import { repositoryLayout } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import {
  TableChecksums,
  TestCluster,
  assertCliBuilt,
  freeLoopbackPort,
  runRookery,
  s3TestRepository,
  startCluster,
  tableChecksums,
} from '@rookery/testing';

jest.setTimeout(900_000);

/**
 * Authenticated manifests through the real CLI, on a filesystem repository and on the S3-compatible
 * server, signed by a signing key alone (integrity.keyFile) or by the encryption key. A repository
 * written before signing is upgraded by `rookery repository sign` (each backup
 * verified first) and then restores; an attacker with write access to the repository but not the
 * key — who copies a backup under a newer id, edits its manifest and recomputes its sha256 — is
 * refused by `verify` as tampering and by `restore` before anything is written.
 */
describe.each<[string, 'integrity' | 'encryption', (work: string) => Promise<string>]>([
  ['file', 'integrity', async (work) => `file://${join(work, 'repo')}`],
  ['s3', 'encryption', async () => s3TestRepository('signing')],
])('signed manifests on a %s repository, the %s key configured', (_kind, keySection, repositoryUrl) => {
  let source: TestCluster;
  let work: string;
  let repo: string;
  let store: Store;
  let config: string;
  let original: string;
  let startedAt: Date;
  let originalData: TableChecksums;

  /** `rookery …` with the signing key configured. */
  const keyed = (args: string[]) => runRookery([...args, '--config', config, '--repo', repo]);

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-signing-'));
    // Restored servers run as the postgres account: it must reach their directories.
    await chmod(work, 0o711);
    repo = await repositoryUrl(work);
    store = createStore(repo);
    source = await startCluster({ name: `signing-${_kind}` });
    await source.query(
      `create table accounts (id int primary key, owner text not null); insert into accounts select g, 'owner ' || g from generate_series(1, 5000) g`,
    );
    await writeFile(join(work, 'integrity.key'), `${'5a'.repeat(32)}\n`, { mode: 0o600 });
    config = join(work, 'rookery.yaml');
    await writeFile(config, `${keySection}:\n  keyFile: ${join(work, 'integrity.key')}\n`);
    const run = keyed(['backup', '--tier', 'oltp', '--json', '--pg-url', source.url]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const taken = JSON.parse(run.stdout) as BackupManifest;
    original = taken.id;
    startedAt = new Date(taken.startedAt);
    // The repository an operator upgrades: its manifest as a rookery before signing wrote it.
    const { key, manifest } = await readManifest(original);
    const unsigned: Partial<BackupManifest> = { ...manifest };
    delete unsigned.signature;
    delete unsigned.checksum;
    await store.write(key, Buffer.from(JSON.stringify(signManifest(unsigned as UnsignedManifest), null, 2)));
    originalData = await tableChecksums(source.url);
  });

  afterAll(async () => {
    await store?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  async function readManifest(id: string): Promise<{ key: string; manifest: BackupManifest }> {
    // A forgery shares the original's startedAt, so its folder too.
    const key = repositoryLayout.manifestKey('oltp', id, startedAt);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.read(key)) chunks.push(chunk as Buffer);
    return { key, manifest: JSON.parse(Buffer.concat(chunks).toString('utf8')) as BackupManifest };
  }

  /**
   * The forgery: the original backup's objects copied under a newer id, its manifest edited to
   * match and its sha256 recomputed, as anyone who can write the repository can. `keepSignature`:
   * the original's signature left in place (an edited signed manifest); else none (unsigned).
   */
  async function forge(suffix: number, keepSignature: boolean): Promise<string> {
    const { manifest } = await readManifest(original);
    const id = `${original}-${suffix}`;
    const edited: Partial<BackupManifest> = { ...manifest, id, finishedAt: new Date(Date.parse(manifest.finishedAt) + 1000).toISOString() };
    delete edited.checksum;
    if (!keepSignature) delete edited.signature;
    const forged = signManifest(edited as UnsignedManifest);
    for (const artifact of manifest.artifacts) {
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(repositoryLayout.artifactKey('oltp', original, startedAt, artifact.name)))
        chunks.push(chunk as Buffer);
      await store.write(repositoryLayout.artifactKey('oltp', id, startedAt, artifact.name), Buffer.concat(chunks));
    }
    await store.write(repositoryLayout.manifestKey('oltp', id, startedAt), Buffer.from(JSON.stringify(forged, null, 2)));
    return id;
  }

  async function removeBackup(id: string): Promise<void> {
    const keys: string[] = [];
    for await (const object of store.list(repositoryLayout.backupsPrefix('oltp')))
      if (object.key.includes(`/${id}/`)) keys.push(object.key);
    for (const key of keys) await store.remove(key);
  }

  it('refuses the unsigned backups of a repository written before signing, as untrusted, not as missing', () => {
    const verify = keyed(['verify', '--tier', 'oltp', '--backup', original]);
    expect(verify.status).not.toBe(0);
    expect(verify.stderr).toContain('is not signed');
    expect(verify.stderr).toContain('rookery repository sign');
    expect(verify.stderr).not.toContain('not found');

    const dir = join(work, 'restored-unsigned');
    const restore = keyed(['restore', '--tier', 'oltp', '--backup', 'latest', '--to', dir]);
    expect(restore.status).not.toBe(0);
    expect(restore.stderr).toContain('is not signed');
    expect(existsSync(dir)).toBe(false);
  });

  it('repository sign verifies and signs them, once; the backup then restores with its data', async () => {
    const sign = keyed(['repository', 'sign', '--tier', 'oltp']);
    expect(sign.stderr).toBe('');
    expect(sign.status).toBe(0);
    expect(sign.stdout).toContain(`signed  ${original}`);
    expect((await readManifest(original)).manifest.signature).toEqual(
      expect.objectContaining({ algorithm: 'hmac-sha256', keyId: expect.stringMatching(/^[0-9a-f]{16}$/) }),
    );

    const again = keyed(['repository', 'sign', '--tier', 'oltp']);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`current ${original}`);
    expect(again.stdout).not.toContain('signed ');

    expect(keyed(['verify', '--tier', 'oltp', '--backup', original]).status).toBe(0);
    const dir = join(work, 'restored-signed');
    const port = await freeLoopbackPort();
    const restore = keyed(['restore', '--tier', 'oltp', '--backup', 'latest', '--to', dir, '--start', '--port', String(port)]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    try {
      expect(await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`)).toEqual(originalData);
    } finally {
      const owner = await stat(dir);
      spawnSync('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', dir, '-m', 'fast'], { uid: owner.uid, gid: owner.gid });
    }
  });

  it.each<[string, boolean, string]>([
    ['an unsigned copy with a recomputed sha256', false, 'is not signed'],
    ['an edited signed manifest with a recomputed sha256', true, 'signature that does not match'],
  ])(
    'refuses a forged backup, %s: verify reports tampering, restore writes nothing, sign leaves it',
    async (suffix, keepSignature, problem) => {
      // A suffix sorts the forgery after the original: it is what `latest` names.
      const forged = await forge(keepSignature ? 2 : 3, keepSignature);
      try {
        const byId = keyed(['verify', '--tier', 'oltp', '--backup', forged]);
        expect(byId.status).not.toBe(0);
        expect(byId.stderr).toContain(problem);
        expect(byId.stderr).not.toContain('not found');
        const latest = keyed(['verify', '--tier', 'oltp']);
        expect(latest.status).not.toBe(0);
        expect(latest.stderr).toContain(problem);

        for (const backup of ['latest', forged]) {
          const dir = join(work, `restored-${suffix.replace(/\W+/g, '-')}-${backup}`);
          const restore = keyed(['restore', '--tier', 'oltp', '--backup', backup, '--to', dir]);
          expect(restore.status).not.toBe(0);
          expect(restore.stderr).toContain(problem);
          expect(existsSync(dir)).toBe(false);
        }
        if (keepSignature) {
          const sign = keyed(['repository', 'sign', '--tier', 'oltp']);
          expect(sign.status).not.toBe(0);
          expect(sign.stdout).toContain(`FAILED  `);
          expect(sign.stderr).toContain('left unsigned');
          expect((await readManifest(forged)).manifest.signature?.mac).toBe((await readManifest(original)).manifest.signature?.mac);
        }
      } finally {
        await removeBackup(forged);
      }
    },
  );
});
