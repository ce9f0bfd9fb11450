import type { RookeryConfig } from '@rookery/config';
import type { CompressionSpec } from '@rookery/core';
import type { ChunkHasher, FrameCompressor } from '@rookery/pipeline';
import type { BackupRepository } from '@rookery/repository';

/** How WAL files are encoded on their way into the store: codec and level, chunk size, client-side key. */
export interface WalEncoding {
  compression: CompressionSpec;
  chunkSize?: number;
  /** Client-side AES-256-GCM key, or null for none (the store's SSE still applies). */
  key: { material: Buffer; id: string } | null;
  /**
   * Whether an object that is not encrypted is refused on read (config encryption.required).
   * Unset: required whenever a key is configured.
   */
  requireEncryption?: boolean;
}

/** Whether reads under this encoding refuse objects that are not encrypted (see WalEncoding). */
export function encryptionRequired(encoding: Pick<WalEncoding, 'key' | 'requireEncryption'>): boolean {
  return encoding.requireEncryption ?? encoding.key !== null;
}

/**
 * What the WAL services need, and nothing else: the tiers' settings (storage class, the server
 * to check), the WAL settings (wal.reuseBuffers for wal-get), the primary repository and the encoding. The engine's EngineContext satisfies it;
 * wal-push and wal-get build it alone (createWalEngine).
 */
export interface WalContext {
  config: Pick<RookeryConfig, 'tiers' | 'wal'>;
  repository: BackupRepository;
  encoding: WalEncoding;
  /** Where compression runs; default the process-wide worker pool. */
  compressor?: FrameCompressor;
  /** Where the sha256 of a pushed file is computed; default the process-wide worker thread. */
  hasher?: ChunkHasher;
}
