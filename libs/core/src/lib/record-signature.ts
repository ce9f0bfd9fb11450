import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from './manifest';

/**
 * Authenticated records: what rookery trusts from the repository (backup manifests, legal holds,
 * copy markers, the WAL archive's system record) carries an HMAC-SHA256 under a subkey derived from the configured key. A sha256
 * checksum only detects damage, since anyone who can write the repository can recompute it; the
 * HMAC can only be computed with the key.
 */
export const SIGNATURE_ALGORITHM = 'hmac-sha256';

/**
 * HKDF info per use, kept apart from the encryption's own derivation and from each other: the same
 * key material never serves two uses (a service's event key configured by mistake as a repository's
 * integrity key signs nothing the other accepts).
 */
const SIGNING_INFO = { records: 'rookery manifest signing v1', events: 'rookery event signing v1' } as const;

/** What a derived key signs: repository records, or the events a service publishes. */
export type SigningPurpose = keyof typeof SIGNING_INFO;

/** The signature a record carries; `keyId` names the key so that keys can rotate. */
export interface RecordSignature {
  algorithm: typeof SIGNATURE_ALGORITHM;
  keyId: string;
  mac: string;
}

/** A signing subkey and its id (the first 16 hex of the subkey's sha256: names it, reveals nothing). */
export interface SigningKey {
  readonly id: string;
  readonly subkey: Buffer;
}

/**
 * The keys of a repository: at most one signs what this rookery writes; every one of `verifying`
 * (the signing key among them) is accepted on read. `required`: a record without a valid
 * signature is refused (true whenever any key is configured).
 */
export interface SigningKeyring {
  readonly signing: SigningKey | null;
  readonly verifying: readonly SigningKey[];
}

/** What kind of record is signed: part of the MAC input, so a signed hold never passes as a manifest. */
export type SignedRecordKind = 'backup-manifest' | 'legal-hold' | 'copy-marker' | 'wal-system' | 'cloud-event';

/**
 * The signing subkey derived from key material (HKDF-SHA256, empty salt). `id` names it: by
 * default the first 16 hex of the subkey's sha256 (names it, reveals nothing); events name their
 * keys by the producing service instead, as configured.
 */
export function deriveSigningKey(material: Buffer, purpose: SigningPurpose = 'records', id?: string): SigningKey {
  const subkey = Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), SIGNING_INFO[purpose], 32));
  return { id: id ?? createHash('sha256').update(subkey).digest('hex').slice(0, 16), subkey };
}

/** A keyring that signs with `signing` and also accepts `alsoVerify` (older keys during a rotation). */
export function signingKeyring(signing: SigningKey | null, alsoVerify: readonly SigningKey[] = []): SigningKeyring {
  const verifying = [...(signing ? [signing] : []), ...alsoVerify.filter((key) => key.id !== signing?.id)];
  return { signing, verifying };
}

export function requiresSignatures(keyring: SigningKeyring | null | undefined): keyring is SigningKeyring {
  return Boolean(keyring && keyring.verifying.length > 0);
}

/** The signature of `body` (every field the record holds except its signature and checksum). */
export function signRecord(kind: SignedRecordKind, body: unknown, key: SigningKey): RecordSignature {
  return { algorithm: SIGNATURE_ALGORITHM, keyId: key.id, mac: recordMac(kind, body, key) };
}

/**
 * Why `signature` does not authenticate `body` under the keyring, or null when it does. The
 * problems read as the end of a sentence naming the record: "is not signed".
 */
export function signatureProblem(
  kind: SignedRecordKind,
  body: unknown,
  signature: RecordSignature | undefined,
  keyring: SigningKeyring,
): string | null {
  if (!signature || typeof signature !== 'object' || typeof signature.mac !== 'string') return 'is not signed';
  if (signature.algorithm !== SIGNATURE_ALGORITHM) return `is signed with an unsupported algorithm '${String(signature.algorithm)}'`;
  const key = keyring.verifying.find((candidate) => candidate.id === signature.keyId);
  if (!key) return `is signed by an unknown key ${String(signature.keyId)}`;
  const expected = Buffer.from(recordMac(kind, body, key), 'hex');
  const actual = Buffer.from(signature.mac, 'hex');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    return `has a signature that does not match (key ${key.id}): it was altered after it was signed`;
  }
  return null;
}

function recordMac(kind: SignedRecordKind, body: unknown, key: SigningKey): string {
  return createHmac('sha256', key.subkey).update(`${kind}\n`).update(canonicalJson(body)).digest('hex');
}
