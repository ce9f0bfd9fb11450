// The node rookery runs on: this checkout's pinned `node` dependency (package.json), the one npm ci
// built the native modules for. npm scripts and npx run on it already (npm puts node_modules/.bin
// first on PATH); a global link (`#!/usr/bin/env node`) or `node bin/rookery.js` may start the
// machine's node instead, which then runs the same command on the pinned one and exits as it did.
const { existsSync, realpathSync } = require('node:fs');
const { constants } = require('node:os');
const path = require('node:path');

const pinnedNode = path.join(__dirname, '..', '..', 'node_modules', 'node', 'bin', 'node');

/** Returns when this process runs on the pinned node (or none is installed); else never returns. */
function runOnPinnedNode(script) {
  if (!existsSync(pinnedNode) || realpathSync(pinnedNode) === realpathSync(process.execPath)) return;
  const { spawnSync } = require('node:child_process');
  const result = spawnSync(pinnedNode, [...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`rookery: cannot start the pinned node ${pinnedNode}: ${result.error.message}\n`);
    // A failure for every command: never 1, which wal-get answers for "not archived".
    process.exit(128);
  }
  if (result.signal) {
    process.kill(process.pid, result.signal);
    process.exit(128 + (constants.signals[result.signal] ?? 0));
  }
  process.exit(result.status);
}

module.exports = { pinnedNode, runOnPinnedNode };
