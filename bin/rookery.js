#!/usr/bin/env node
// The `rookery` command: the compiled CLI (npm run build, run by `npm install`), with the
// workspace's @rookery/* libraries resolved to their compiled output.
require('../tools/runtime/register-aliases.cjs');
require('../dist/apps/cli/src/main.js');
