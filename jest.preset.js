const nxPreset = require('@nx/jest/preset').default;

// Unit specs (*.spec.ts) and integration specs (*.int-spec.ts) live beside the code. ts-jest only
// transpiles here: type checking is the build's job (`npm run build`), which keeps test runs fast.
module.exports = {
  ...nxPreset,
  testMatch: ['**/?(*.)+(spec|int-spec).ts'],
  testEnvironment: 'node',
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
