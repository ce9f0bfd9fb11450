import { BackupManifest, UnsignedManifest, isManifestIntact, manifestSignatureProblem, sealManifest, signManifest } from './manifest';
import { deriveSigningKey, requiresSignatures, signRecord, signatureProblem, signingKeyring } from './record-signature';

/** The fields these specs edit; signing covers whatever fields a manifest has. */
const unsigned = {
  formatVersion: 1,
  id: '20261126T020000Z-oltp',
  tier: 'oltp',
  stopLsn: '0/2000100',
  retentionUntil: '2027-02-24T02:01:00.000Z',
  artifacts: [],
} as unknown as UnsignedManifest;

const oldKey = deriveSigningKey(Buffer.alloc(32, 1));
const newKey = deriveSigningKey(Buffer.alloc(32, 2));

/** What a forger with write access but no key does: edit a field, recompute the sha256. */
function forged(manifest: BackupManifest, edit: Partial<UnsignedManifest>): BackupManifest {
  const copy: Partial<BackupManifest> = { ...manifest, ...edit };
  delete copy.checksum;
  return signManifest(copy as UnsignedManifest);
}

describe('signing keys', () => {
  it('derives a stable subkey and a 16-hex id that differ per key and from the material', () => {
    expect(deriveSigningKey(Buffer.alloc(32, 1))).toEqual(oldKey);
    expect(oldKey.id).toMatch(/^[0-9a-f]{16}$/);
    expect(oldKey.id).not.toBe(newKey.id);
    expect(oldKey.subkey.equals(Buffer.alloc(32, 1))).toBe(false);
  });

  it('requires signatures exactly when a key is configured', () => {
    expect(requiresSignatures(null)).toBe(false);
    expect(requiresSignatures(signingKeyring(null))).toBe(false);
    expect(requiresSignatures(signingKeyring(newKey))).toBe(true);
    expect(requiresSignatures(signingKeyring(null, [oldKey]))).toBe(true);
  });
});

describe('manifest signatures', () => {
  const keyring = signingKeyring(newKey, [oldKey]);

  it('signs with the signing key, keeps the checksum intact and verifies', () => {
    const sealed = sealManifest(unsigned, newKey);
    expect(sealed.signature).toEqual(expect.objectContaining({ algorithm: 'hmac-sha256', keyId: newKey.id }));
    expect(isManifestIntact(sealed)).toBe(true);
    expect(manifestSignatureProblem(sealed, keyring)).toBeNull();
    expect(manifestSignatureProblem(JSON.parse(JSON.stringify(sealed)), keyring)).toBeNull();
  });

  it('verifies with every key of a rotation; only the configured key signs', () => {
    const byOld = sealManifest(unsigned, oldKey);
    expect(manifestSignatureProblem(byOld, keyring)).toBeNull();
    expect(keyring.signing?.id).toBe(newKey.id);
    expect(keyring.verifying.map((key) => key.id)).toEqual([newKey.id, oldKey.id]);
  });

  it('re-signs a signed manifest with the new key (sign after a rotation)', () => {
    const resealed = sealManifest(sealManifest(unsigned, oldKey), newKey);
    expect(resealed.signature?.keyId).toBe(newKey.id);
    expect(manifestSignatureProblem(resealed, signingKeyring(newKey))).toBeNull();
  });

  it('refuses an unsigned manifest', () => {
    expect(manifestSignatureProblem(signManifest(unsigned), keyring)).toBe('is not signed');
  });

  it('refuses a manifest signed by a key it does not know, naming the key id', () => {
    const byOld = sealManifest(unsigned, oldKey);
    expect(manifestSignatureProblem(byOld, signingKeyring(newKey))).toBe(`is signed by an unknown key ${oldKey.id}`);
  });

  it.each<[string, Partial<UnsignedManifest>]>([
    ['stopLsn', { stopLsn: '0/3000000' }],
    [
      'an artifact',
      {
        artifacts: [
          {
            name: 'base.tar',
            kind: 'base-tar',
            bytes: 1,
            storedBytes: 1,
            sha256: 'ab',
            compression: { codec: 'none', level: 0 },
            encryption: { algorithm: 'none' },
          },
        ],
      },
    ],
    ['retentionUntil', { retentionUntil: '2099-01-01T00:00:00.000Z' }],
  ])('refuses a manifest whose %s was edited and its checksum recomputed', (_field, edit) => {
    const tampered = forged(sealManifest(unsigned, newKey), edit);
    expect(isManifestIntact(tampered)).toBe(true);
    expect(manifestSignatureProblem(tampered, keyring)).toMatch(/signature that does not match .*altered/);
  });

  it('does not accept a signature of another kind of record', () => {
    const body = { ...unsigned };
    const holdSignature = signRecord('legal-hold', body, newKey);
    expect(signatureProblem('backup-manifest', body, holdSignature, keyring)).toMatch(/does not match/);
    expect(signatureProblem('legal-hold', body, holdSignature, keyring)).toBeNull();
  });
});
