#!/usr/bin/env node
// The whole test suite (README command 2, called by .ci/run): type-checks and builds the
// workspace, then runs every unit and integration spec in one jest run. The jest global setup
// (libs/testing) fetches and starts the S3-compatible servers; each integration suite starts its own
// throwaway PostgreSQL clusters. Everything started is stopped at the end, pass or fail.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_SKIP_NX_CACHE: 'true' };

// The integration tests run throwaway PostgreSQL 15 clusters, and the dashboard test a headless
// Chromium: install them from Debian's packages when this machine does not have them (we run as
// root here; say so if not). Kafka and S3Proxy come from Maven Central in the jest harness.
function ensureDebianPackage(path, pkg, what) {
  if (existsSync(path)) return;
  process.stdout.write(`\n== installing ${what} (apt: ${pkg})\n`);
  const update = spawnSync('apt-get', ['update'], { stdio: 'inherit' });
  const install = update.status === 0 && spawnSync('apt-get', ['install', '-y', pkg], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!install || install.status !== 0) {
    process.stdout.write(`cannot install ${pkg}: install ${what} and run again\n`);
    process.exit(1);
  }
}

function step(title, command, args) {
  process.stdout.write(`\n== ${title}\n`);
  const result = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stdout.write(`\n${title} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status || 1);
  }
}

ensureDebianPackage('/usr/lib/postgresql/15/bin/initdb', 'postgresql-15', 'PostgreSQL 15 server binaries');
ensureDebianPackage('/usr/bin/chromium', 'chromium', 'Chromium (dashboard test)');
step('build (tsc, type check)', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
// @nx/enforce-module-boundaries reads Nx's cached project graph and silently skips itself
// without one (a fresh clone has none): compute the graph first.
step('project graph (for the module-boundary rule)', 'npx', ['nx', 'show', 'projects']);
step('lint (module boundaries, owned SDKs)', 'npx', ['eslint', '--max-warnings=0', 'apps', 'libs', 'tools']);
step('tests (unit + integration)', 'npx', ['jest', '--ci', '--maxWorkers=2', ...process.argv.slice(2)]);
