/**
 * Polls `probe` until `done` holds for its value, and returns that value; fails with the last
 * value after `timeoutMs` (default POLL_TIMEOUT_MS: generous, since a cap on a wait is there to
 * end a test that will never pass, not to bound how fast the condition comes; benchmarks time).
 * Integration tests wait for conditions this way, never by sleeping.
 */
/** The default cap of pollUntil. */
export const POLL_TIMEOUT_MS = 180_000;

export async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  options: { what?: string; timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? POLL_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}; last value: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
