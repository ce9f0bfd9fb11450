import { RookeryConfig } from '@rookery/config';
import { ConfigError } from '@rookery/core';
import { InlineChunkHasher, InlineFrameCompressor, keyFingerprint, parseEncryptionKey, shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import type { ArtifactEncoding } from './artifact.codec';
import { WalTransfer } from './wal.transfer';

/**
 * How artifacts and WAL files are encoded under this configuration: codec, level, workers and
 * chunk size of the compression, and the client-side key with its fingerprint.
 */
export function artifactEncodingFor(config: RookeryConfig): ArtifactEncoding {
  const keyMaterial = config.encryptionKey ? parseEncryptionKey(config.encryptionKey.reveal()) : null;
  return {
    compression: { codec: config.compression.codec, level: config.compression.level },
    workers: config.compression.workers,
    chunkSize: config.compression.chunkSize,
    serverCompression: config.compression.location === 'server',
    key: keyMaterial ? { material: keyMaterial, id: keyFingerprint(keyMaterial) } : null,
  };
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
  const store = createStore(primaryStoreUrl(config));
  const wal = new WalTransfer({
    config,
    repository: new BackupRepository(store),
    encoding: artifactEncodingFor(config),
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
