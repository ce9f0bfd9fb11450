export * from './lib/buffer-pool';
export * from './lib/chunk-hasher';
export * from './lib/compression';
export * from './lib/compression-pool';
export * from './lib/digest';
export * from './lib/encryption';
export * from './lib/releasing-writer';
export { LZ4_MAX_FRAME_BYTES, Lz4FrameDecoder } from './lib/lz4-frame';
export { OffloadedZstdDecompressStream } from './lib/zstd-decode';
