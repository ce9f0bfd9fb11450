import { InvariantError } from '@rookery/core';

/**
 * Keys are '/'-separated relative paths (Store port). Both drivers refuse keys that could escape the
 * store's root or alias another key: empty, absolute, '.' or '..' segments, empty segments, NUL.
 */
export function assertStoreKey(key: string): void {
  const bad =
    key.length === 0 ||
    key.startsWith('/') ||
    key.includes('\0') ||
    key.includes('\\') ||
    key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new InvariantError(`invalid store key '${key}'`);
}

/** A list prefix is a key prefix: it may be empty or end with '/', but must not escape the root. */
export function assertStorePrefix(prefix: string): void {
  if (prefix === '') return;
  assertStoreKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
