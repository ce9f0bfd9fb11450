import type { Config } from 'jest';
import { getJestProjectsAsync } from '@nx/jest';

// One run for every project's unit and integration specs. The global setup starts the shared
// S3-compatible servers once (PostgreSQL clusters are per suite); the summary reporter prints the
// plain "N passed, N failed" line CI reads.
export default async (): Promise<Config> => ({
  projects: await getJestProjectsAsync(),
  // Specs judge data, not time (issue 11): a test or hook without its own timeout gets 300 s, not
  // jest's 5 s, so a cleanup on a loaded machine (a restored server and its WAL prefetcher, clusters,
  // S3 objects) is not failed by a stopwatch. A global option: jest ignores it in a project's config.
  testTimeout: 300_000,
  globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
  reporters: ['default', '<rootDir>/tools/test/summary-reporter.cjs'],
  // The longest suites first, also on a fresh clone without jest's timing cache.
  testSequencer: '<rootDir>/tools/test/slow-first.sequencer.cjs',
});
