// Cost of authenticated manifests (issue 13): signing a manifest when a backup commits, and
// checking it on every read (list, find, restore, verify), beside the sha256 checksum alone.
// Times the pure core functions over the built dist; one run, --iterations N (default 20000),
// for a physical backup's manifest (2 artifacts) and a logical one with --artifacts N (default 200).
//   npx tsc -p tsconfig.build.json && node tools/bench/manifest-signing.mjs
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const core = require('../../dist/libs/core/src/index.js');
const { values } = parseArgs({
  options: { iterations: { type: 'string', default: '20000' }, artifacts: { type: 'string', default: '200' } },
});
const iterations = Number(values.iterations);

function manifestWith(artifactCount) {
  const artifacts = Array.from({ length: artifactCount }, (_, index) => ({
    name: `part-${index}.dump.zst`,
    kind: 'dump',
    bytes: 1e9,
    storedBytes: 2e8,
    sha256: 'a'.repeat(64),
    logicalSha256: 'b'.repeat(64),
    compression: { codec: 'zstd', level: 3 },
    encryption: { algorithm: 'none' },
  }));
  return {
    formatVersion: 1,
    id: '20261207T040000Z-oltp',
    tier: 'oltp',
    database: 'app',
    type: 'full',
    method: 'physical',
    startedAt: '2026-12-07T04:00:00.000Z',
    finishedAt: '2026-12-07T04:01:00.000Z',
    postgres: { version: '15.8', versionNum: 150008, systemIdentifier: '7312345678901234567' },
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    walRange: { start: '000000010000000000000002', stop: '000000010000000000000002' },
    parent: null,
    retentionUntil: '2027-03-07T04:01:00.000Z',
    storageClass: 'STANDARD_IA',
    regions: ['local'],
    bytes: 1e9 * artifactCount,
    storedBytes: 2e8 * artifactCount,
    artifacts,
    tool: { name: 'rookery', version: '0.1.0' },
  };
}

function microsPer(run) {
  for (let i = 0; i < 1000; i++) run();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run();
  return Number(process.hrtime.bigint() - start) / 1000 / iterations;
}

const key = core.deriveSigningKey(Buffer.alloc(32, 7));
const keyring = core.signingKeyring(key);
console.log(`derive signing key (once per process): ${microsPer(() => core.deriveSigningKey(Buffer.alloc(32, 7))).toFixed(1)} µs`);
for (const count of [2, Number(values.artifacts)]) {
  const unsigned = manifestWith(count);
  const checksummed = core.signManifest(unsigned);
  const sealed = core.sealManifest(unsigned, key);
  const write = { unsigned: microsPer(() => core.signManifest(unsigned)), signed: microsPer(() => core.sealManifest(unsigned, key)) };
  const read = {
    unsigned: microsPer(() => core.isManifestIntact(checksummed)),
    signed: microsPer(() => core.isManifestIntact(sealed) && core.manifestSignatureProblem(sealed, keyring) === null),
  };
  console.log(
    `${count} artifacts (${JSON.stringify(sealed).length} bytes): write ${write.unsigned.toFixed(1)} → ${write.signed.toFixed(1)} µs, read ${read.unsigned.toFixed(1)} → ${read.signed.toFixed(1)} µs (checksum only → checksum + HMAC)`,
  );
}
