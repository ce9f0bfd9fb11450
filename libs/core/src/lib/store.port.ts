import { Readable } from 'node:stream';
import { StorageUnsupportedError } from './rookery.errors';
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
 *
 * Everything else is an optional capability: a store declares each one it has in `features` and
 * then implements that capability's interface too (StoreCapabilities). Callers ask for it with
 * hasStoreFeature (and skip what the store cannot do) or requireStoreFeature (a clear
 * StorageUnsupportedError naming the store).
 */
export interface Store {
  /** A description safe for logs (no credentials). */
  readonly description: string;
  readonly features: StoreFeatures;
  /** Checks the store is reachable and writable with these credentials; throws a storage error. */
  check(): Promise<void>;
  stat(key: string, options?: RequestOptions): Promise<ObjectInfo | null>;
  list(prefix: string, options?: RequestOptions): AsyncIterable<ObjectInfo>;
  read(key: string, options?: ReadOptions): Promise<Readable>;
  write(key: string, body: Readable | Buffer, options?: WriteOptions): Promise<ObjectInfo>;
  remove(key: string, options?: RequestOptions): Promise<void>;
  close(): Promise<void>;
}

export interface StoreFeatures {
  /** write with `ifAbsent` is enforced by the store itself (O_EXCL, S3 If-None-Match). */
  conditionalCreate: boolean;
  /** Server-side encryption is requested on every write. */
  serverSideEncryption: boolean;
  /** The store is also StorageClasses: archive tiers and object restore. */
  storageClasses: boolean;
  /** The store is also ObjectLocking: retentions where the bucket allows them. */
  objectLock: boolean;
  /** The store is also WriteCompletion: write hands back each chunk of the body once written. */
  writeCompletion: boolean;
}

/**
 * Storage classes (features.storageClasses): `storageClass` in WriteOptions is honoured (a store
 * without them ignores it), objects move between classes, and archived objects can be thawed.
 */
export interface StorageClasses {
  /**
   * Moves an object to another storage class in place (S3: a copy onto itself) and resolves with
   * its info afterwards; the bytes, and any retention, are unchanged. StorageUnsupportedError where
   * the server ignores storage classes; StorageNotFoundError for a missing key.
   */
  changeStorageClass(key: string, storageClass: StorageClass): Promise<ObjectInfo>;
  /**
   * Whether the object's bytes can be read now: false for an archived object (GLACIER, DEEP_ARCHIVE)
   * that has not been restored. Reads at most one byte.
   */
  isReadable(key: string): Promise<boolean>;
  /**
   * Asks the store to make an archived object readable for `days` (S3 RestoreObject). Resolves
   * 'started', 'in-progress' (a restore was already running) or 'not-needed' (already readable);
   * StorageUnsupportedError where the server has no restore API.
   */
  requestRestore(key: string, options: RestoreRequestOptions): Promise<RestoreRequestOutcome>;
}

/** Object Lock (features.objectLock): whether this bucket locks is asked at run time. */
export interface ObjectLocking {
  /**
   * Whether objects can carry an Object Lock retention here (S3: the bucket's Object Lock
   * configuration, probed once and cached). A store that cannot lock says so with the reason, so
   * callers report the limitation instead of believing objects are immutable.
   */
  objectLock(): Promise<ObjectLockSupport>;
  /**
   * Puts a COMPLIANCE retention on an existing object until `until`: nobody (root included) can
   * delete or overwrite that version before then. Never shortens an existing retention. Rejects
   * with StorageUnsupportedError where objectLock() reports no support.
   */
  retain(key: string, until: Date): Promise<void>;
}

/** Write-completion hooks (features.writeCompletion): a write that hands the body's memory back. */
export interface WriteCompletion {
  write(key: string, body: Readable | Buffer, options?: CompletingWriteOptions): Promise<ObjectInfo>;
}

export interface CompletingWriteOptions extends WriteOptions {
  /**
   * Called with each Buffer read from the body (one the stream gave, or one a byte stream joined
   * several into) once the store keeps no reference to it: its bytes are in the object being
   * written, and the caller may overwrite the memory. At most once per Buffer.
   */
  onWritten?: (chunk: Buffer) => void;
}

/** Each optional capability by its flag in StoreFeatures. */
export interface StoreCapabilities {
  storageClasses: StorageClasses;
  objectLock: ObjectLocking;
  writeCompletion: WriteCompletion;
}

export type StoreCapability = keyof StoreCapabilities;

/**
 * A store that declares capability F and so implements its interface. The flag is part of the
 * type: WriteCompletion alone adds nothing a plain Store's write could not be taken for.
 */
export type StoreWith<F extends StoreCapability> = Store & StoreCapabilities[F] & { readonly features: Readonly<Record<F, true>> };

/** What each capability is called in messages. */
const CAPABILITY_NAMES: Readonly<Record<StoreCapability, string>> = {
  storageClasses: 'storage classes',
  objectLock: 'object lock',
  writeCompletion: 'write-completion hooks',
};

/** Whether the store declares the capability (and so implements its interface). */
export function hasStoreFeature<F extends StoreCapability>(store: Store, feature: F): store is StoreWith<F> {
  return store.features[feature];
}

/** The store as the capability, or a StorageUnsupportedError saying what could not be done where. */
export function requireStoreFeature<F extends StoreCapability>(store: Store, feature: F, what: string): StoreWith<F> {
  if (hasStoreFeature(store, feature)) return store;
  throw new StorageUnsupportedError(`cannot ${what}: ${store.description} has no ${CAPABILITY_NAMES[feature]}`);
}

/** The store's Object Lock support; a store without the capability has none, and says why. */
export async function objectLockSupport(store: Store): Promise<ObjectLockSupport> {
  if (hasStoreFeature(store, 'objectLock')) return store.objectLock();
  return {
    supported: false,
    detail: `${store.description} has no object lock: its objects can be deleted by anyone with write access`,
  };
}

export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
  storageClass?: string;
  /** Filled by stat (not list): an archive restore asked for this object, and until when its copy lasts. */
  restore?: ObjectRestoreState;
  /** Filled by stat (not list): the object's Object Lock retention, when it has one. */
  retention?: ObjectRetention;
}

export interface ObjectRestoreState {
  /** True while the store is still thawing the object; false once the temporary copy is readable. */
  ongoing: boolean;
  expiresAt?: Date;
}

export interface ObjectRetention {
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  retainUntil: Date;
}

export interface ObjectLockSupport {
  supported: boolean;
  /** What was found: "object lock enabled on bucket 'b'", or why not. */
  detail: string;
}

export interface RestoreRequestOptions {
  /** How long the thawed copy stays readable. */
  days: number;
  /** S3 retrieval tier: Expedited (minutes, GLACIER only), Standard (hours), Bulk (slowest). */
  tier: 'Expedited' | 'Standard' | 'Bulk';
}

export type RestoreRequestOutcome = 'started' | 'in-progress' | 'not-needed';

/** A request the caller can give up on (a failed backup's cleanup against a store that went silent). */
export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** Honoured by a store with features.storageClasses, ignored by the others. */
  storageClass?: StorageClass;
  /** Fail with StorageConflictError when an object already exists under the key. */
  ifAbsent?: boolean;
  signal?: AbortSignal;
  /** Called with the number of bytes accepted so far (for progress bars). */
  onProgress?: (bytes: number) => void;
}
