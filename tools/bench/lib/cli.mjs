// What every benchmark script starts with: the repository root, the CLI under test, the compiled
// libs (dist/, through the @rookery/* alias hook) and `--flag value` / `--switch` arguments.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ROOKERY = path.join(ROOT, 'bin', 'rookery.js');

const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));

/** A compiled lib's exports, e.g. dist('testing'); needs `npx tsc -p tsconfig.build.json`. */
export function dist(lib) {
  return require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
}

/** `--name value` pairs; a flag followed by another flag (or nothing) is `true`. */
export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1]?.startsWith('--') || argv[i + 1] === undefined ? true : argv[++i];
  }
  return out;
}
