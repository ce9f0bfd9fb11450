// Resolves `@rookery/<lib>` to the compiled library under dist/ so the built apps run with plain
// node, without a bundler and without ts-node. Required once, before the app's entry point.
const Module = require('node:module');
const path = require('node:path');

const distLibs = path.join(__dirname, '..', '..', 'dist', 'libs');
const originalResolve = Module._resolveFilename;

Module._resolveFilename = function resolveRookery(request, ...rest) {
  // `@rookery/<lib>` is the lib's index, its one public entry for imports.
  const match = /^@rookery\/([a-z-]+)$/.exec(request);
  if (match) return originalResolve.call(this, path.join(distLibs, match[1], 'src', 'index.js'), ...rest);
  return originalResolve.call(this, request, ...rest);
};
