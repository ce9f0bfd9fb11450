import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupManifest, IntegrityError, deriveSigningKey, signingKeyring } from '@rookery/core';
import { FsStoreDriver } from '@rookery/storage';
import { makeManifest } from '@rookery/testing';
import { BackupReplicator, replicationLayout } from './backup.replicator';
import { BackupRepository } from './backup.repository';
import { LegalHoldRepository } from './legal-hold.repository';
import { repositoryLayout } from './repository.layout';
import { WalArchive, walLayout } from './wal.archive';

const oldKey = deriveSigningKey(Buffer.alloc(32, 1));
const newKey = deriveSigningKey(Buffer.alloc(32, 2));
const CONTENT = Buffer.from('12345');

/** A manifest whose one artifact is CONTENT, with its true sha256 (a replica copy checks it). */
function manifestOf(id: string): BackupManifest {
  const base = makeManifest({ id, bytes: CONTENT.length, storedBytes: CONTENT.length });
  return makeManifest({
    id,
    bytes: CONTENT.length,
    storedBytes: CONTENT.length,
    artifacts: [{ ...base.artifacts[0], sha256: createHash('sha256').update(CONTENT).digest('hex') }],
  });
}

/**
 * The records rookery trusts from the repository, signed where a key is configured, on the
 * filesystem store: manifests (rotation: several keys verify, one signs), legal holds (a forged
 * one still holds, but is not believed) and copy markers (a forged one counts as no copy).
 */
describe('signed repository records', () => {
  let root: string;
  let store: FsStoreDriver;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rookery-signed-'));
    store = new FsStoreDriver(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function commitWith(repository: BackupRepository, id: string): Promise<BackupManifest> {
    const manifest = manifestOf(id);
    await store.write(repository.artifactKey(manifest, 'base.tar.zst'), CONTENT);
    return repository.commit(manifest);
  }

  it('manifests: the signing key signs, every key of the rotation verifies, unknown and unsigned ones are refused', async () => {
    const unsigned = await commitWith(new BackupRepository(store), '20261124T020000Z-oltp');
    const byOld = await commitWith(new BackupRepository(store, signingKeyring(oldKey)), '20261125T020000Z-oltp');
    const rotated = new BackupRepository(store, signingKeyring(newKey, [oldKey]));
    const byNew = await commitWith(rotated, '20261126T020000Z-oltp');
    expect([byOld.signature?.keyId, byNew.signature?.keyId]).toEqual([oldKey.id, newKey.id]);

    const listing = await rotated.list('oltp');
    expect(listing.backups.map((backup) => backup.id)).toEqual([byOld.id, byNew.id]);
    expect(listing.damaged).toEqual([
      {
        key: rotated.manifestKeyOf(unsigned),
        problem: expect.stringContaining('is not signed'),
        hint: expect.stringContaining('rookery repository sign'),
      },
    ]);
    await expect(rotated.find('oltp', unsigned.id)).rejects.toBeInstanceOf(IntegrityError);

    const newOnly = new BackupRepository(store, signingKeyring(newKey));
    await expect(newOnly.find('oltp', byOld.id)).rejects.toThrow(`is signed by an unknown key ${oldKey.id}`);
    // Without a key, the repository takes every intact manifest, signed or not.
    expect((await new BackupRepository(store).list('oltp')).backups).toHaveLength(3);
  });

  it('manifests: an edited signed manifest with a recomputed checksum is refused; resign signs what was unsigned', async () => {
    const repository = new BackupRepository(store, signingKeyring(newKey));
    const signed = await commitWith(repository, '20261126T020000Z-oltp');
    const key = repository.manifestKeyOf(signed);
    // The forger's edit: a later retention, the sha256 recomputed, the signature left as it was.
    const edited: Partial<BackupManifest> = { ...signed, retentionUntil: '2099-01-01T00:00:00.000Z' };
    delete edited.checksum;
    await writeFile(join(root, key), JSON.stringify(makeManifest(edited)));
    await expect(repository.readManifest(key)).rejects.toThrow(/signature that does not match .*altered/);

    const unsigned = await commitWith(new BackupRepository(store), '20261127T020000Z-oltp');
    await expect(repository.find('oltp', unsigned.id)).rejects.toThrow('is not signed');
    await repository.resign(await repository.readManifest(repository.manifestKeyOf(unsigned), { requireSignature: false }));
    expect((await repository.find('oltp', unsigned.id)).signature?.keyId).toBe(newKey.id);
  });

  it('legal holds: signed when placed; a forged or unsigned one still holds its backup but is not believed', async () => {
    const keyring = signingKeyring(newKey);
    const holds = new LegalHoldRepository(store, keyring);
    const hold = {
      backupId: '20261126T020000Z-oltp',
      tier: 'oltp' as const,
      reason: 'case 42',
      heldBy: 'alice',
      heldAt: '2026-11-27T00:00:00.000Z',
    };
    await holds.place(hold);
    expect(await holds.get('oltp', hold.backupId)).toEqual(hold);

    const path = join(root, repositoryLayout.holdKey('oltp', hold.backupId));
    await writeFile(path, (await readFile(path, 'utf8')).replace('case 42', 'case 43'));
    expect((await holds.get('oltp', hold.backupId))?.reason).toMatch(/signature that does not match.*stays held/);

    await new LegalHoldRepository(store).place({ ...hold, backupId: '20261127T020000Z-oltp' });
    expect((await holds.list('oltp')).map((held) => held.reason)).toEqual([
      expect.stringContaining('does not match'),
      expect.stringContaining('is not signed'),
    ]);
  });

  it('copy markers: signed when written; an unsigned or forged one counts as no copy', async () => {
    const keyring = signingKeyring(newKey);
    const primary = new BackupRepository(store, keyring);
    const manifest = await commitWith(primary, '20261126T020000Z-oltp');
    const targetRoot = await mkdtemp(join(tmpdir(), 'rookery-signed-replica-'));
    try {
      const replicator = new BackupReplicator(primary);
      const result = await replicator.replicate(manifest, { region: 'eu', store: new FsStoreDriver(targetRoot) });
      expect(result.outcome).toBe('copied');
      expect((await replicator.markers('oltp')).get(manifest.id)?.get('eu')?.status).toBe('copied');
      // The replica's manifest is signed too, so the region is a repository that verifies.
      expect((await new BackupRepository(new FsStoreDriver(targetRoot), keyring).find('oltp', manifest.id)).regions).toEqual([
        'local',
        'eu',
      ]);

      const path = join(root, replicationLayout.copyMarkerKey(manifest, 'eu'));
      const signedMarker = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      await writeFile(path, JSON.stringify({ ...signedMarker, verifiedAt: '2030-01-01T00:00:00.000Z' }));
      expect((await replicator.markers('oltp')).size).toBe(0);
      await writeFile(
        path,
        JSON.stringify({
          formatVersion: 1,
          backupId: manifest.id,
          tier: 'oltp',
          region: 'eu',
          store: 'x',
          status: 'copied',
          at: '2026-11-27T00:00:00.000Z',
        }),
      );
      expect((await replicator.markers('oltp')).size).toBe(0);
    } finally {
      await rm(targetRoot, { recursive: true, force: true });
    }
  });

  it('the WAL system record: signed when recorded; an edited, unsigned or unknown-key one is refused; sign upgrades an unsigned or older-key one', async () => {
    const record = {
      systemIdentifier: '7312345678901234567',
      segmentSize: 16 * 1024 * 1024,
      firstSegment: '000000010000000000000002',
      recordedAt: '2026-11-27T00:00:00.000Z',
    };
    const path = join(root, walLayout.systemKey('oltp'));
    const archive = new WalArchive(store, signingKeyring(newKey));
    await archive.recordSystem('oltp', record);
    expect(await archive.system('oltp')).toEqual(record);
    expect(await archive.signSystem('oltp', record)).toEqual({ outcome: 'current', key: 'oltp/wal/system.json' });

    // Another server's identifier put in by someone without the key.
    const signed = await readFile(path, 'utf8');
    await writeFile(path, signed.replace(record.systemIdentifier, '7000000000000000001'));
    await expect(archive.system('oltp')).rejects.toThrow(
      /WAL system record 'oltp\/wal\/system.json' has a signature that does not match .*altered/,
    );
    expect(await archive.signSystem('oltp', null)).toEqual(expect.objectContaining({ outcome: 'failed' }));
    await expect(new WalArchive(store, signingKeyring(oldKey)).system('oltp')).rejects.toThrow(`is signed by an unknown key ${newKey.id}`);

    // Written before signing was configured: refused until `repository sign`, which checks it names the backups' system.
    await new WalArchive(store).recordSystem('oltp', record);
    await expect(archive.system('oltp')).rejects.toThrow(/'oltp\/wal\/system.json' is not signed/);
    expect(await archive.signSystem('oltp', { systemIdentifier: '7000000000000000001' })).toEqual(
      expect.objectContaining({ outcome: 'failed', problem: expect.stringContaining('backups are of system 7000000000000000001') }),
    );
    expect(await archive.signSystem('oltp', record)).toEqual({ outcome: 'signed', key: 'oltp/wal/system.json' });
    expect(await archive.system('oltp')).toEqual(record);
    // Rotation: a record signed by an older key of the keyring is read, and re-signed by the new one.
    await new WalArchive(store, signingKeyring(oldKey)).recordSystem('oltp', record);
    const rotated = new WalArchive(store, signingKeyring(newKey, [oldKey]));
    expect(await rotated.system('oltp')).toEqual(record);
    expect(await rotated.signSystem('oltp', record)).toEqual({ outcome: 'signed', key: 'oltp/wal/system.json' });
    expect(await new WalArchive(store, signingKeyring(newKey)).system('oltp')).toEqual(record);
  });
});
