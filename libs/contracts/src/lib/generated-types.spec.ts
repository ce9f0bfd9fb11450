import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { GENERATE_TYPES_ARGUMENTS, PROTO_LOADER_OPTIONS, PROTO_ROOT, ROOKERY_PROTO_FILES, ROOKERY_SERVICES } from './proto-files';

const LIBRARY = join(__dirname, '..', '..');
const GENERATED = join(LIBRARY, 'src', 'generated');

function files(root: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.set(relative(root, path), readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  return found;
}

describe('the checked-in generated types', () => {
  let fresh: string;

  beforeAll(() => {
    fresh = mkdtempSync(join(tmpdir(), 'rookery-contracts-'));
    const generator = require.resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js');
    const protos = [...ROOKERY_PROTO_FILES].sort();
    const result = spawnSync(process.execPath, [generator, ...GENERATE_TYPES_ARGUMENTS, '-O', fresh, ...protos], {
      cwd: LIBRARY,
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`proto-loader-gen-types failed (exit ${result.status}): ${result.stderr}`);
  });

  afterAll(() => rmSync(fresh, { recursive: true, force: true }));

  it('are what proto-loader-gen-types makes of the protos now (regenerate: see libs/contracts/README.md)', () => {
    const checkedIn = files(GENERATED);
    const regenerated = files(fresh);
    expect([...checkedIn.keys()].sort()).toEqual([...regenerated.keys()].sort());
    const drifted = [...regenerated].filter(([path, text]) => checkedIn.get(path) !== text).map(([path]) => path);
    expect(drifted).toEqual([]);
  });

  it('are all exported from the library', () => {
    const barrel = readFileSync(join(LIBRARY, 'src', 'lib', 'messages.ts'), 'utf8');
    const missing = [...files(join(GENERATED, 'rookery', 'v1')).keys()]
      .map((file) => file.replace(/\.ts$/, ''))
      .filter((name) => !barrel.includes(`'../generated/rookery/v1/${name}'`));
    expect(missing).toEqual([]);
  });
});

describe('the rookery.v1 protos', () => {
  it('load with the options servers use, and declare every service listed', () => {
    const definition = loadSync([...ROOKERY_PROTO_FILES], PROTO_LOADER_OPTIONS);
    const services = Object.keys(definition).filter((name) => !('format' in definition[name]));
    expect(services.sort()).toEqual(
      Object.keys(ROOKERY_SERVICES)
        .map((name) => `rookery.v1.${name}`)
        .sort(),
    );
    expect(PROTO_ROOT).toBe(join(LIBRARY, 'proto'));
  });
});
