import { DEFAULT_REPOSITORY_OWNER, RookeryConfig } from '@rookery/config';
import { ConfigError, SigningKeyring, deriveSigningKey, signingKeyring } from '@rookery/core';
import {
  InlineChunkHasher,
  InlineFrameCompressor,
  keyFingerprint,
  parseEncryptionKey,
  shutdownChunkHasher,
  shutdownCompressionPool,
} from '@rookery/pipeline';
import { lookupOsGroup, lookupOsUser } from '@rookery/postgres';
import { BackupRepository } from '@rookery/repository';
import { FsAccount, StoreOptions, createStore } from '@rookery/storage';
import { WalEncoding } from './wal.context';
import { WalTransfer } from './wal.transfer';

/**
 * How WAL files (and, with the engine's additions, artifacts) are encoded under this
 * configuration: codec, level and chunk size of the compression, and the client-side key with its
 * fingerprint.
 */
export function walEncodingFor(config: RookeryConfig): WalEncoding {
  const keyMaterial = config.encryptionKey ? parseEncryptionKey(config.encryptionKey.reveal()) : null;
  return {
    compression: { codec: config.compression.codec, level: config.compression.level },
    chunkSize: config.compression.chunkSize,
    key: keyMaterial ? { material: keyMaterial, id: keyFingerprint(keyMaterial) } : null,
    requireEncryption: config.encryptionRequired,
  };
}

/**
 * The keys that sign and verify the repository's manifests, holds and copy markers: the
 * integrity key (else the encryption key) signs; integrity.verifyKeyFiles are older keys still
 * accepted. Null when no key is configured: the repository then takes unsigned records.
 */
export function signingKeyringFor(config: RookeryConfig): SigningKeyring | null {
  const signing = config.integrity.signingKey ?? config.encryptionKey;
  const older = config.integrity.verifyKeys.map((key) => deriveSigningKey(parseEncryptionKey(key.reveal())));
  if (!signing && older.length === 0) return null;
  return signingKeyring(signing ? deriveSigningKey(parseEncryptionKey(signing.reveal())) : null, older);
}

/** The primary store URL; a ConfigError when none is configured. */
export function primaryStoreUrl(config: RookeryConfig): string {
  const url = config.repositories[0];
  if (!url) {
    throw new ConfigError('no repository configured', ['repositories'], {
      hint: 'pass --repo file:///path or --repo s3://bucket/prefix, or set repositories in rookery.yaml',
    });
  }
  return url;
}

/**
 * How stores are opened under this configuration: a file:// repository rookery writes as root
 * belongs to the owner of its root directory, or to repository.owner while it has none yet; with
 * repository.group, what rookery creates there is that group's.
 */
export function storeOptionsFor(config: RookeryConfig): StoreOptions {
  const { owner, group } = config.repository;
  return { file: { defaultOwner: () => repositoryAccount(owner), ...(group === null ? {} : { group: lookupOsGroup(group) }) } };
}

/** The account by name; null (root keeps what it creates) when the default account does not exist here. */
function repositoryAccount(name: string): FsAccount | null {
  try {
    return lookupOsUser(name);
  } catch (error) {
    if (name === DEFAULT_REPOSITORY_OWNER) return null;
    throw new ConfigError(`repository.owner: os account '${name}' does not exist`, ['repository.owner'], {
      cause: error,
      hint: 'name the account PostgreSQL runs as (its archive_command and restore_command read and write the repository)',
    });
  }
}

export interface WalEngine {
  wal: WalTransfer;
  config: RookeryConfig;
  close(): Promise<void>;
}

/**
 * WAL transfer alone, for wal-push, wal-get and the background archiver: the primary store and
 * the encoding, without the rest of the engine (PostgreSQL programs and driver, backup and
 * restore services), so that a process per WAL file starts with less to load. `oneShot`: a
 * process for one file compresses in its own thread instead of starting worker threads.
 */
export function createWalEngine(config: RookeryConfig, options: { oneShot?: boolean } = {}): WalEngine {
  const store = createStore(primaryStoreUrl(config), storeOptionsFor(config));
  const wal = new WalTransfer({
    config,
    repository: new BackupRepository(store, signingKeyringFor(config)),
    encoding: walEncodingFor(config),
    compressor: options.oneShot ? new InlineFrameCompressor() : undefined,
    hasher: options.oneShot ? new InlineChunkHasher() : undefined,
  });
  return {
    wal,
    config,
    close: async () => {
      await store.close();
      await Promise.all([shutdownCompressionPool(), shutdownChunkHasher()]);
    },
  };
}
