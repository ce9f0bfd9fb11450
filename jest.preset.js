const nxPreset = require('@nx/jest/preset').default;

// Unit specs (*.spec.ts) and integration specs (*.int-spec.ts) live beside the code. ts-jest only
// transpiles here: type checking is the build's job (`npm run build`), which keeps test runs fast.
module.exports = {
  ...nxPreset,
  testMatch: ['**/?(*.)+(spec|int-spec).ts'],
  testEnvironment: 'node',
  // Specs judge data, not time (issue 11): the default for a test or hook without its own timeout
  // is generous, so a cleanup (stopping a restored server and its WAL prefetcher, clusters, S3
  // objects) on a loaded machine is not failed by a stopwatch. A hang still ends, and says where.
  testTimeout: 300_000,
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
