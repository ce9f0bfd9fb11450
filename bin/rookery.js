#!/usr/bin/env node
// The `rookery` command: the compiled CLI (built by `npm install` through the prepare script),
// with the workspace's @rookery/* libraries resolved to their compiled output.

// Failures print one line on stderr; the AWS SDK's notice about future Node versions is not one.
const emitWarning = process.emitWarning;
process.emitWarning = function filteredWarning(warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0] && rest[0].type;
  if (type === 'NodeVersionSupportWarning' || String(warning && (warning.name || warning)).includes('NodeVersionSupportWarning')) return;
  return emitWarning.call(process, warning, ...rest);
};

require('../tools/runtime/register-aliases.cjs');
require('../dist/apps/cli/src/main.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
