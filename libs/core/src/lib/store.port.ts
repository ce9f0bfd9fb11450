import { Readable } from 'node:stream';
import { StorageClass } from './tier';

/**
 * The storage port. Keys are '/'-separated paths relative to the store's root (bucket prefix or
 * directory). Implementations (filesystem, S3) must guarantee:
 * - write is atomic: a reader never sees a partial object; an aborted or failed write leaves no
 *   object under `key` (at most garbage under a temporary name);
 * - write resolves only once the object is durable (fsynced file, completed S3 upload);
 * - read of a missing key rejects with StorageNotFoundError; stat of a missing key resolves null;
 * - remove of a missing key succeeds;
 * - list yields every object under the prefix (recursively), in no promised order;
 * - SDK and OS errors are translated to the storage errors of the core taxonomy.
 */
export interface Store {
  /** A description safe for logs (no credentials). */
  readonly description: string;
  readonly features: StoreFeatures;
  /** Checks the store is reachable and writable with these credentials; throws a storage error. */
  check(): Promise<void>;
  stat(key: string): Promise<ObjectInfo | null>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  read(key: string, options?: ReadOptions): Promise<Readable>;
  write(key: string, body: Readable | Buffer, options?: WriteOptions): Promise<ObjectInfo>;
  remove(key: string): Promise<void>;
  close(): Promise<void>;
}

export interface StoreFeatures {
  /** write with `ifAbsent` is enforced by the store itself (O_EXCL, S3 If-None-Match). */
  conditionalCreate: boolean;
  /** storageClass in WriteOptions is honoured. */
  storageClasses: boolean;
  /** Server-side encryption is requested on every write. */
  serverSideEncryption: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
  storageClass?: string;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface WriteOptions {
  storageClass?: StorageClass;
  /** Fail with StorageConflictError when an object already exists under the key. */
  ifAbsent?: boolean;
  signal?: AbortSignal;
  /** Called with the number of bytes accepted so far (for progress bars). */
  onProgress?: (bytes: number) => void;
}
