import type { Config } from 'jest';
import { getJestProjectsAsync } from '@nx/jest';

// One run for every project's unit and integration specs. The global setup starts the shared
// S3-compatible servers once (PostgreSQL clusters are per suite); the summary reporter prints the
// plain "N passed, N failed" line CI reads.
export default async (): Promise<Config> => ({
  projects: await getJestProjectsAsync(),
  globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
  reporters: ['default', '<rootDir>/tools/test/summary-reporter.cjs'],
});
