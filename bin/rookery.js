#!/usr/bin/env node
// The `rookery` command: the compiled CLI (built by `npm install` through the prepare script),
// with the workspace's @rookery/* libraries resolved to their compiled output.
require('../tools/runtime/register-aliases.cjs');
require('../dist/apps/cli/src/main.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
