import {
  COMPRESSION_CODECS,
  CompressionCodec,
  IntegrityError,
  Store,
  TierName,
  WalFileName,
  codecExtension,
  formatTimeline,
  parseWalFileName,
} from '@rookery/core';

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
 * The database system a tier's WAL archive belongs to, as the first segment pushed into it told:
 * every later segment must come from the same system (pg_control's identifier) with the same
 * segment size.
 */
export interface WalSystemRecord {
  systemIdentifier: string;
  segmentSize: number;
  /** The segment it was first read from, and when. */
  firstSegment: string;
  recordedAt: string;
}

/** The WAL archive of a repository: where WAL files are, found by listing (the store is the truth). */
export class WalArchive {
  constructor(readonly store: Store) {}

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

  /** The tier's system record, or null before the first segment was pushed. */
  async system(tier: TierName): Promise<WalSystemRecord | null> {
    const key = walLayout.systemKey(tier);
    if (!(await this.store.stat(key))) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of await this.store.read(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<WalSystemRecord>;
    if (typeof parsed.systemIdentifier !== 'string' || typeof parsed.segmentSize !== 'number') {
      throw new IntegrityError(`WAL system record '${key}' is malformed`, {
        hint: 'restore it from a copy of the repository, or remove it to record the next pushed segment',
      });
    }
    return parsed as WalSystemRecord;
  }

  /** Records the tier's system (first push). The store's write is atomic; a concurrent first push writes the same record. */
  async recordSystem(tier: TierName, record: WalSystemRecord): Promise<void> {
    await this.store.write(walLayout.systemKey(tier), Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
  }
}
