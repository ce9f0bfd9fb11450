import {
  COMPRESSION_CODECS,
  CompressionCodec,
  ConfigError,
  IntegrityError,
  RecordSignature,
  SigningKeyring,
  Store,
  TierName,
  WalFileName,
  codecExtension,
  formatTimeline,
  parseWalFileName,
  requiresSignatures,
  signRecord,
  signatureProblem,
} from '@rookery/core';
import { signatureHint } from './backup.repository';

/**
 * One archived WAL file in the store. The key carries everything needed to fetch and check it
 * without a manifest (DESIGN §4): `<tier>/wal/<timeline>/<name>-<sha256>[.zst|.gz|.lz4][.enc]`,
 * where sha256 is that of the file PostgreSQL handed over (before compression and encryption).
 * wal-get verifies the decoded bytes against it; wal-push compares it to refuse a conflicting
 * duplicate without downloading anything.
 */
export interface WalObject {
  key: string;
  tier: TierName;
  file: WalFileName;
  sha256: string;
  codec: CompressionCodec;
  encrypted: boolean;
  storedBytes: number;
  archivedAt: Date;
}

const KEY = /^([a-z]+)\/wal\/([0-9A-F]{8})\/([0-9A-Za-z.]+)-([0-9a-f]{64})((?:\.(?:zst|gz|lz4))?)((?:\.enc)?)$/;
const CODEC_BY_EXTENSION = new Map(COMPRESSION_CODECS.map((codec) => [codecExtension(codec), codec]));

export const walLayout = {
  walPrefix(tier: TierName): string {
    return `${tier}/wal/`;
  },
  timelinePrefix(tier: TierName, timeline: number): string {
    return `${tier}/wal/${formatTimeline(timeline)}/`;
  },
  key(tier: TierName, file: WalFileName, sha256: string, codec: CompressionCodec, encrypted: boolean): string {
    return `${walLayout.timelinePrefix(tier, file.timeline)}${file.name}-${sha256}${codecExtension(codec)}${encrypted ? '.enc' : ''}`;
  },
  /** The record of the database system that archives into the tier (WalArchive.system). */
  systemKey(tier: TierName): string {
    return `${tier}/wal/system.json`;
  },
  /** Parses a WAL object key; null for anything else under wal/ (temporary files, strays). */
  parseKey(key: string): Omit<WalObject, 'storedBytes' | 'archivedAt'> | null {
    const match = KEY.exec(key);
    if (!match) return null;
    const [, tier, timeline, name, sha256, extension, encrypted] = match;
    const file = parseWalFileName(name);
    const codec = CODEC_BY_EXTENSION.get(extension);
    if (!file || codec === undefined || formatTimeline(file.timeline) !== timeline) return null;
    return { key, tier: tier as TierName, file, sha256, codec, encrypted: encrypted === '.enc' };
  },
};

/**
 * The database system a tier's WAL archive belongs to, as the first backup or segment pushed into
 * it told: every later segment must come from the same system (pg_control's identifier) with the
 * same segment size, and every later physical backup too.
 */
export interface WalSystemRecord {
  systemIdentifier: string;
  segmentSize: number;
  /** The segment it was first read from (a backup: the first segment the backup needs), and when. */
  firstSegment: string;
  recordedAt: string;
}

/** What `WalArchive.signSystem` did with the tier's system record. */
export type WalSystemSigning =
  | { outcome: 'signed' | 'current'; key: string }
  | { outcome: 'failed'; key: string; problem: string }
  | { outcome: 'absent'; key: string };

type StoredSystemRecord = WalSystemRecord & { signature?: RecordSignature };

/**
 * The WAL archive of a repository: where WAL files are, found by listing (the store is the truth).
 * With a signing keyring, the system record is signed when recorded and refused on read when its
 * signature is missing or wrong: it decides which server's WAL the archive accepts.
 */
export class WalArchive {
  constructor(
    readonly store: Store,
    private readonly keyring: SigningKeyring | null = null,
  ) {}

  /** Every archived copy of the file named `name` (normally one; several only for .partial files). */
  async versions(tier: TierName, file: WalFileName): Promise<WalObject[]> {
    const found: WalObject[] = [];
    for await (const object of this.store.list(`${walLayout.timelinePrefix(tier, file.timeline)}${file.name}-`)) {
      const parsed = walLayout.parseKey(object.key);
      if (parsed && parsed.file.name === file.name) {
        found.push({ ...parsed, storedBytes: object.size, archivedAt: object.modifiedAt });
      }
    }
    return found.sort((a, b) => a.archivedAt.getTime() - b.archivedAt.getTime());
  }

  /** Every archived WAL file of the tier (or of one timeline), sorted by timeline, then name. */
  async list(tier: TierName, timeline?: number): Promise<WalObject[]> {
    const prefix = timeline === undefined ? walLayout.walPrefix(tier) : walLayout.timelinePrefix(tier, timeline);
    const found: WalObject[] = [];
    for await (const object of this.store.list(prefix)) {
      const parsed = walLayout.parseKey(object.key);
      if (parsed && parsed.tier === tier) found.push({ ...parsed, storedBytes: object.size, archivedAt: object.modifiedAt });
    }
    return found.sort(
      (a, b) =>
        a.file.timeline - b.file.timeline || a.file.name.localeCompare(b.file.name) || a.archivedAt.getTime() - b.archivedAt.getTime(),
    );
  }

  /** The tier's system record, or null before the first backup or segment recorded it. */
  async system(tier: TierName): Promise<WalSystemRecord | null> {
    const stored = await this.readSystem(tier);
    if (!stored) return null;
    const problem = this.systemSignatureProblem(stored);
    if (problem && this.keyring) {
      throw new IntegrityError(`WAL system record '${walLayout.systemKey(tier)}' ${problem}`, {
        hint: signatureHint(problem, tier, this.keyring, 'WAL system record'),
      });
    }
    return unsigned(stored);
  }

  /**
   * Records the tier's system (first backup or push), signed when a key is configured. The store's
   * write is atomic; a concurrent first push writes the same record.
   */
  async recordSystem(tier: TierName, record: WalSystemRecord): Promise<void> {
    await this.writeSystem(tier, this.seal(record));
  }

  /**
   * `rookery repository sign`: signs the tier's system record when it is unsigned or signed by an
   * older key of the keyring, once it agrees with `trusted` (the system of the tier's verified
   * backups, when there are any). A record altered after it was signed, or signed by an unknown
   * key, is left as it was: signing would launder a forgery.
   */
  async signSystem(tier: TierName, trusted: { systemIdentifier: string } | null): Promise<WalSystemSigning> {
    const key = walLayout.systemKey(tier);
    const signing = this.keyring?.signing;
    if (!signing) throw new ConfigError('no signing key configured', ['integrity.keyFile']);
    const stored = await this.readSystem(tier).catch((error: unknown) => {
      if (error instanceof IntegrityError) return error;
      throw error;
    });
    if (stored === null) return { outcome: 'absent', key };
    if (stored instanceof IntegrityError) return { outcome: 'failed', key, problem: stored.message };
    const problem = this.systemSignatureProblem(stored);
    if (problem === null && stored.signature?.keyId === signing.id) return { outcome: 'current', key };
    // Unsigned, or signed by an older key of the keyring: signed anew. Anything else stays.
    if (problem !== null && problem !== 'is not signed')
      return { outcome: 'failed', key, problem: `WAL system record '${key}' ${problem}` };
    if (trusted && trusted.systemIdentifier !== stored.systemIdentifier) {
      return {
        outcome: 'failed',
        key,
        problem: `WAL system record '${key}' names system ${stored.systemIdentifier}, but the tier's backups are of system ${trusted.systemIdentifier}`,
      };
    }
    await this.writeSystem(tier, this.seal(unsigned(stored)));
    return { outcome: 'signed', key };
  }

  /** The record signed when a keyring requires signatures; a keyring that only verifies cannot write. */
  private seal(record: WalSystemRecord): StoredSystemRecord {
    if (!requiresSignatures(this.keyring)) return record;
    if (!this.keyring.signing) {
      throw new ConfigError('the repository requires signed records, but no signing key is configured', ['integrity.keyFile'], {
        hint: 'set integrity.keyFile (or encryption.keyFile); integrity.verifyKeyFiles only verify',
      });
    }
    return { ...record, signature: signRecord('wal-system', record, this.keyring.signing) };
  }

  private systemSignatureProblem(stored: StoredSystemRecord): string | null {
    if (!requiresSignatures(this.keyring)) return null;
    return signatureProblem('wal-system', unsigned(stored), stored.signature, this.keyring);
  }

  private async readSystem(tier: TierName): Promise<StoredSystemRecord | null> {
    const key = walLayout.systemKey(tier);
    if (!(await this.store.stat(key))) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.store.read(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    let parsed: Partial<StoredSystemRecord>;
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<StoredSystemRecord>;
    } catch {
      parsed = {};
    }
    if (typeof parsed.systemIdentifier !== 'string' || typeof parsed.segmentSize !== 'number') {
      throw new IntegrityError(`WAL system record '${key}' is malformed`, {
        hint: 'restore it from a copy of the repository, or remove it to record the next backup or pushed segment',
      });
    }
    return parsed as StoredSystemRecord;
  }

  private async writeSystem(tier: TierName, stored: StoredSystemRecord): Promise<void> {
    await this.store.write(walLayout.systemKey(tier), Buffer.from(`${JSON.stringify(stored, null, 2)}\n`));
  }
}

/** The record without its signature: what the signature covers. */
function unsigned(stored: StoredSystemRecord): WalSystemRecord {
  const record: Partial<StoredSystemRecord> = { ...stored };
  delete record.signature;
  return record as WalSystemRecord;
}
