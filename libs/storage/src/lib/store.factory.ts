import { parse, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Store } from '@rookery/core';
import { FsRepositoryAccessOptions } from './fs-repository-access';
import { FsStoreDriver } from './fs-store.driver';
import { S3ChecksumMode, S3ServerSideEncryption, S3StoreConfig, S3_STORE_DEFAULTS } from './s3-store.config';

/** Settings a URL does not carry; for S3 the URL's query parameters override these defaults. */
export interface StoreOptions {
  s3?: Partial<Omit<S3StoreConfig, 'bucket' | 'prefix'>>;
  /** Who a file:// repository belongs to when rookery runs as root (see FsRepositoryAccess). */
  file?: FsRepositoryAccessOptions;
}

export type StoreLocation = { kind: 'file'; root: string } | { kind: 's3'; config: S3StoreConfig };

const S3_NUMBER_PARAMS = ['partSize', 'maxAttempts', 'connectTimeoutMs', 'socketTimeoutMs', 'requestTimeoutMs'] as const;
const S3_PARAMS = [
  'region',
  'endpoint',
  'forcePathStyle',
  'sse',
  'kmsKeyId',
  'checksum',
  'conditionalCreate',
  ...S3_NUMBER_PARAMS,
] as const;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The only code that turns a store URL into a driver (STYLE: one factory reads config). */
export function createStore(url: string, options: StoreOptions = {}): Store {
  const location = parseStoreUrl(url, options);
  if (location.kind === 'file') return new FsStoreDriver(location.root, options.file);
  // Loaded here, not at the top: a file:// store (wal-push on a local repository) never pays for the AWS SDK.
  const { S3StoreDriver } = require('./s3-store.driver') as typeof import('./s3-store.driver');
  return new S3StoreDriver(location.config);
}

/**
 * Parses `file:///abs/path` or `s3://bucket/prefix?region=R&endpoint=http://host:port&forcePathStyle=true`
 * (also `sse=AES256|aws:kms`, `kmsKeyId`, `checksum=when_required|when_supported`,
 * `conditionalCreate=true`, and `partSize` (bytes), `maxAttempts`, `connectTimeoutMs`,
 * `socketTimeoutMs`, `requestTimeoutMs` as positive integers). Every problem is reported in one ConfigError; credentials in a URL are
 * refused, and messages show the URL without them.
 */
export function parseStoreUrl(url: string, options: StoreOptions = {}): StoreLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigError(`invalid store url '${redactStoreUrl(url)}'`, ['not a url'], {
      cause: error,
      hint: 'use file:///absolute/path or s3://bucket/prefix?region=…',
    });
  }
  const issues: string[] = [];
  if (parsed.username || parsed.password) {
    issues.push('credentials in a store url are refused: the aws sdk default chain (env, profile) supplies them');
  }
  let location: StoreLocation | undefined;
  if (parsed.protocol === 'file:') location = parseFileUrl(parsed, issues);
  else if (parsed.protocol === 's3:') location = parseS3Url(parsed, options, issues);
  else issues.push(`unsupported scheme '${parsed.protocol}': expected file:// or s3://`);

  if (issues.length > 0 || !location) {
    throw new ConfigError(`invalid store url '${redactStoreUrl(url)}': ${issues.join('; ')}`, issues);
  }
  return location;
}

/** The URL with any user information removed, for messages and logs. */
export function redactStoreUrl(url: string): string {
  return url.replace(/(:\/\/)[^/?#@&=]*@/g, '$1***@');
}

function parseFileUrl(url: URL, issues: string[]): StoreLocation | undefined {
  if (url.host !== '' && url.host !== 'localhost') {
    issues.push(`file urls need an absolute path (file:///abs/path), got host '${url.host}'`);
    return undefined;
  }
  if (url.search || url.hash) issues.push('file urls take no query or fragment');
  const root = resolve(fileURLToPath(url));
  // file:// (an empty path) reads as the filesystem root: a repository there is a typo, never a choice.
  if (root === parse(root).root) {
    issues.push(`file urls need a directory below the filesystem root (file:///abs/path), got '${root}'`);
    return undefined;
  }
  return { kind: 'file', root };
}

function parseS3Url(url: URL, options: StoreOptions, issues: string[]): StoreLocation | undefined {
  const bucket = url.hostname;
  if (!BUCKET_NAME.test(bucket)) issues.push(`'${bucket}' is not a valid bucket name`);

  let prefix = '';
  try {
    prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  } catch {
    issues.push('the prefix is not valid percent-encoding');
  }
  if (prefix.split('/').some((segment) => segment === '.' || segment === '..' || (prefix && segment === ''))) {
    issues.push(`prefix '${prefix}' has empty, '.' or '..' segments`);
  }

  const params = url.searchParams;
  for (const name of new Set(params.keys())) {
    if (!(S3_PARAMS as readonly string[]).includes(name)) {
      issues.push(`unknown parameter '${name}' (known: ${S3_PARAMS.join(', ')})`);
    }
  }
  const defaults = options.s3 ?? {};
  const config: S3StoreConfig = { ...S3_STORE_DEFAULTS, ...defaults, bucket, prefix };

  const region = params.get('region');
  if (region !== null) {
    if (/^[a-z0-9-]+$/.test(region)) config.region = region;
    else issues.push(`region '${region}' is not a region name`);
  }
  const endpoint = params.get('endpoint');
  if (endpoint !== null) {
    const checked = checkEndpoint(endpoint);
    if (typeof checked === 'string') config.endpoint = checked;
    else issues.push(checked.issue);
  }
  const forcePathStyle = params.get('forcePathStyle');
  if (forcePathStyle !== null) {
    const value = parseBoolean(forcePathStyle);
    if (value === undefined) issues.push(`forcePathStyle must be true or false, got '${forcePathStyle}'`);
    else config.forcePathStyle = value;
  }
  const conditionalCreate = params.get('conditionalCreate');
  if (conditionalCreate !== null) {
    const value = parseBoolean(conditionalCreate);
    if (value === undefined) issues.push(`conditionalCreate must be true or false, got '${conditionalCreate}'`);
    else config.conditionalCreate = value;
  }
  const sse = params.get('sse');
  if (sse !== null) {
    const value = (['AES256', 'aws:kms'] as const).find((known) => known.toLowerCase() === sse.toLowerCase());
    if (value) config.sse = value as S3ServerSideEncryption;
    else issues.push(`sse must be AES256 or aws:kms, got '${sse}'`);
  }
  const kmsKeyId = params.get('kmsKeyId');
  if (kmsKeyId !== null) config.kmsKeyId = kmsKeyId;
  if (config.kmsKeyId && config.sse !== 'aws:kms') issues.push('kmsKeyId needs sse=aws:kms');
  const checksum = params.get('checksum');
  if (checksum !== null) {
    const value = checksum.toLowerCase();
    if (value === 'when_required' || value === 'when_supported') config.checksum = value as S3ChecksumMode;
    else issues.push(`checksum must be when_required or when_supported, got '${checksum}'`);
  }
  for (const name of S3_NUMBER_PARAMS) {
    const text = params.get(name);
    if (text === null) continue;
    const value = Number(text);
    if (/^[1-9][0-9]*$/.test(text) && Number.isSafeInteger(value)) config[name] = value;
    else issues.push(`${name} must be a positive integer, got '${text}'`);
  }
  return { kind: 's3', config };
}

function checkEndpoint(endpoint: string): string | { issue: string } {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    return { issue: `endpoint '${redactStoreUrl(endpoint)}' is not a url` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { issue: `endpoint '${redactStoreUrl(endpoint)}' must be http:// or https://` };
  }
  if (parsed.username || parsed.password) {
    return { issue: 'credentials in the endpoint url are refused: the aws sdk default chain supplies them' };
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
}

function parseBoolean(value: string): boolean | undefined {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return undefined;
}
