// The S3 store's settings, apart from its driver: the factory parses URLs with them without
// loading the AWS SDK (a cost at every command's start), which only s3:// stores need.

export type S3ServerSideEncryption = 'AES256' | 'aws:kms';
/** The SDK's checksum modes: `when_required` adds checksums only where S3 demands them. */
export type S3ChecksumMode = 'when_required' | 'when_supported';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Everything an S3 store needs; built by the store factory from a URL plus options. */
export interface S3StoreConfig {
  bucket: string;
  /** Root of the store inside the bucket, without leading or trailing '/'; '' for the bucket root. */
  prefix: string;
  /** Unset: the SDK's default chain (AWS_REGION, profile). */
  region?: string;
  /** An S3-compatible endpoint (http://host:port); unset for AWS S3. */
  endpoint?: string;
  forcePathStyle: boolean;
  sse: S3ServerSideEncryption;
  kmsKeyId?: string;
  checksum: S3ChecksumMode;
  /**
   * The server enforces `If-None-Match: *` on PutObject and CompleteMultipartUpload (AWS S3 does;
   * S3Proxy 2.6 ignores it). When false, `ifAbsent` is a best-effort check-then-put.
   */
  conditionalCreate: boolean;
  /** Multipart part size in bytes (≥ 5 MiB) and parts uploaded in parallel. */
  partSize: number;
  queueSize: number;
  /**
   * Attempts per request (the SDK retries network errors, timeouts and 5xx answers with backoff;
   * each multipart part on its own), and attempts per read body without progress (a body that
   * fails mid-stream resumes with a ranged GET from the byte where it stopped).
   */
  maxAttempts: number;
  /** Time to open the TCP connection. */
  connectTimeoutMs: number;
  /** Time the socket may sit without a byte moving either way: catches a stalled server. */
  socketTimeoutMs: number;
  /**
   * Time from sending a request until the answer's headers arrive, uploading its body included
   * (a whole part of a multipart upload); a read's body afterwards is bounded by the socket timeout.
   */
  requestTimeoutMs: number;
  /**
   * Explicit credentials. Production leaves this unset so the SDK's default chain (environment,
   * shared profile, SSO, instance metadata) applies; credentials never come from a store URL.
   */
  credentials?: S3Credentials;
}

export const S3_STORE_DEFAULTS = Object.freeze({
  forcePathStyle: false,
  sse: 'AES256' as S3ServerSideEncryption,
  checksum: 'when_required' as S3ChecksumMode,
  conditionalCreate: false,
  partSize: 16 * 1024 * 1024,
  queueSize: 4,
  maxAttempts: 3,
  connectTimeoutMs: 5_000,
  socketTimeoutMs: 30_000,
  requestTimeoutMs: 120_000,
});
