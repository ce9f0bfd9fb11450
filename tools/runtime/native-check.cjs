#!/usr/bin/env node
// Part of `prepare` (npm ci / npm install): the runtime is the pinned `node` dependency, and npm
// runs this on it (node_modules/.bin comes first on a script's PATH). Checks that the native
// modules built against one Node ABI (NODE_MODULE_VERSION) load on it, and rebuilds those that do
// not against the pinned node's own headers: e.g. when npm_config_nodedir in the environment
// overrode the one in .npmrc. N-API modules (zstd-napi, lz4-napi) load on any ABI: not checked.
const { spawnSync } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const pinned = path.join(root, 'node_modules', 'node');
const LOADS = {
  'better-sqlite3': "new (require('better-sqlite3'))(':memory:').close()",
  lz4: "require('lz4')",
};

function fail(message) {
  process.stderr.write(`native-check: ${message}\n`);
  process.exit(1);
}

/** The modules of LOADS that fail to load on this node. */
function notLoading() {
  return Object.keys(LOADS).filter((name) => {
    const result = spawnSync(process.execPath, ['-e', LOADS[name]], { cwd: root, encoding: 'utf8' });
    return result.status !== 0;
  });
}

const version = JSON.parse(readFileSync(path.join(pinned, 'package.json'), 'utf8')).version;
if (process.version !== `v${version}`) {
  fail(
    `npm ran this on node ${process.version}, not the pinned node v${version} (node_modules/.bin/node): is node_modules/node installed?`,
  );
}
const broken = notLoading();
if (broken.length > 0) {
  // The pinned node's package ships its headers: node-<platform>-<arch>, installed by its preinstall.
  const headers = path.dirname(require.resolve(`node-${process.platform}-${process.arch}/package.json`, { paths: [pinned] }));
  if (!existsSync(path.join(headers, 'include', 'node', 'node_version.h'))) fail(`no Node headers in ${headers}`);
  process.stdout.write(`native-check: not loading on node ${process.version}: ${broken.join(', ')}; rebuilding against ${headers}\n`);
  const rebuild = spawnSync('npm', ['rebuild', ...broken], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, npm_config_nodedir: headers },
  });
  const still = rebuild.status === 0 ? notLoading() : broken;
  if (still.length > 0) fail(`still not loading on node ${process.version}: ${still.join(', ')}`);
}
