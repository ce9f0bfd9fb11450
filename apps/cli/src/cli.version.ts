import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PACKAGE_NAME = 'rookery';

/**
 * The version of this rookery: its package.json's, the one place it is set. Found by walking up
 * from this file, which runs from the sources (tests) and from dist/ alike.
 */
export function rookeryVersion(from: string = __dirname): string {
  for (let directory = from; ; directory = dirname(directory)) {
    const version = versionIn(join(directory, 'package.json'));
    if (version) return version;
    if (dirname(directory) === directory) return 'unknown';
  }
}

function versionIn(file: string): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    return manifest.name === PACKAGE_NAME ? manifest.version : undefined;
  } catch {
    return undefined;
  }
}
