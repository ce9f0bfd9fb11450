import nx from '@nx/eslint-plugin';

// Which SDK each library owns (STYLE: one lib owns each SDK). Everyone else is refused the import.
const ownedSdks = [
  { owner: 'libs/storage', patterns: ['@aws-sdk/*'], message: 'the AWS SDK belongs to libs/storage' },
  {
    owner: 'libs/catalog',
    patterns: ['typeorm', 'better-sqlite3'],
    message: 'typeorm and the catalog database drivers belong to libs/catalog',
  },
  { owner: 'libs/postgres', patterns: ['pg'], message: 'control queries to the database being backed up belong to libs/postgres' },
  { owner: 'libs/events', patterns: ['kafkajs'], message: 'the Kafka client belongs to libs/events' },
  {
    owner: 'libs/postgres',
    patterns: ['child_process', 'node:child_process'],
    message: 'child processes are spawned only through libs/postgres ProcessRunner',
  },
];

function restrictedImportsFor(exceptOwner) {
  return ownedSdks.filter((sdk) => !exceptOwner.includes(sdk.owner)).map((sdk) => ({ group: sdk.patterns, message: sdk.message }));
}

const processEnvSyntax = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message: 'read configuration through libs/config',
};

// `engine.context`, `engine['context']`, `const { context } = engine`: outside libs/engine, none
// (a class's own `this.context`, such as libs/wal's WalContext, is its own business).
const engineContextMessage = "the engine's context is internal to libs/engine: call (or add) a RookeryEngine method";
const engineContextSyntax = [
  { selector: "MemberExpression[object.type!='ThisExpression'][property.name='context']", message: engineContextMessage },
  { selector: "MemberExpression[object.type!='ThisExpression'][property.value='context']", message: engineContextMessage },
  {
    selector: "VariableDeclarator[init.type!='ThisExpression'] > ObjectPattern > Property[key.name='context']",
    message: engineContextMessage,
  },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...nx.configs['flat/javascript'],
  {
    // libs/contracts/src/generated: proto-loader-gen-types output, compared with a fresh generation by contracts.spec.ts.
    ignores: ['**/dist', '**/out-tsc', '**/*.worker.js', 'libs/contracts/src/generated/**'],
  },
  {
    files: ['**/*.ts', '**/*.js', '**/*.cjs', '**/*.mjs'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: ['^.*/eslint(\\.base)?\\.config\\.[cm]?[jt]s$'],
          depConstraints: [
            { sourceTag: 'scope:core', onlyDependOnLibsWithTags: ['scope:core'] },
            { sourceTag: 'scope:infra', onlyDependOnLibsWithTags: ['scope:core'] },
            { sourceTag: 'scope:feature', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core'] },
            { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core'] },
            // Product code never loads the test harness (the demo's seed data is in libs/demo).
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core'] },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'focused tests must not land' },
        { object: 'it', property: 'only', message: 'focused tests must not land' },
        { object: 'test', property: 'only', message: 'focused tests must not land' },
      ],
    },
  },
  {
    // Specs of any lib may use the test harness (clusters, S3 servers, seed data); product code may not.
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.contract.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          depConstraints: [
            { sourceTag: 'scope:core', onlyDependOnLibsWithTags: ['scope:core'] },
            { sourceTag: 'scope:infra', onlyDependOnLibsWithTags: ['scope:core', 'scope:infra', 'scope:testing'] },
            { sourceTag: 'scope:feature', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core', 'scope:testing'] },
            { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core', 'scope:testing'] },
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:feature', 'scope:infra', 'scope:core', 'scope:testing'] },
          ],
        },
      ],
    },
  },
  ...[
    'libs/storage',
    'libs/catalog',
    'libs/postgres',
    'libs/core',
    'libs/config',
    'libs/pipeline',
    'libs/auth',
    'libs/repository',
    'libs/events',
    'libs/engine',
    'libs/wal',
    'libs/compliance',
    'libs/service-kit',
    'libs/validation',
    'apps',
  ].map((dir) => ({
    files: [`${dir}/**/*.ts`],
    ignores: ['**/*.spec.ts', '**/*.int-spec.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: restrictedImportsFor([dir]) }],
    },
  })),
  {
    // The engine's context (its repository, lock, PostgreSQL tools) is its own: callers, specs
    // included, use the engine's methods; what they lack is added there, not reached through.
    files: ['libs/**/*.ts', 'apps/**/*.ts', 'tools/**/*.ts'],
    ignores: ['libs/engine/**'],
    rules: { 'no-restricted-syntax': ['error', ...engineContextSyntax] },
  },
  {
    // bin/ runs before any library is loaded. It starts no process of its own but two, the documented
    // exceptions marked in bin/rookery.js: runOnPinnedNode (the same command on the pinned node, before
    // anything is loaded) and spawnDetached (the WAL archiver and prefetcher, this same rookery detached). Of the libraries it requires only their public entries for bin/
    // (dist/libs/wal/src/bin.js), never compiled internals by path.
    files: ['bin/**/*.js'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.name='require'][arguments.0.value=/^(node:)?child_process$/]",
          message: 'child processes are spawned only through libs/postgres ProcessRunner',
        },
        {
          selector:
            "CallExpression[callee.name='require'][arguments.0.value=/dist\\/libs\\//]:not([arguments.0.value='../dist/libs/wal/src/bin.js'])",
          message: 'bin/ requires a library only through its public entry for bin/ (dist/libs/wal/src/bin.js)',
        },
      ],
    },
  },
  {
    // process.env is read only by libs/config (and by the test harness, which is not product code).
    files: ['libs/**/*.ts', 'apps/**/*.ts'],
    ignores: ['libs/config/**', 'libs/testing/**', '**/*.spec.ts', '**/*.int-spec.ts', 'libs/engine/**'],
    rules: { 'no-restricted-syntax': ['error', processEnvSyntax, ...engineContextSyntax] },
  },
  {
    files: ['libs/engine/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.int-spec.ts'],
    rules: { 'no-restricted-syntax': ['error', processEnvSyntax] },
  },
];
