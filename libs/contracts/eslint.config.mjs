import baseConfig from '../../eslint.config.mjs';

// src/generated is proto-loader-gen-types output (see the root config): not linted from here either.
export default [{ ignores: ['src/generated/**'] }, ...baseConfig];
