import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@rookery/core';
import { buildConfig } from './config.loader';

describe('encryption.keyFile modes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rookery-key-file-'));
  const keyFile = join(dir, 'backup.key');
  const key = 'a'.repeat(64);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function withMode(mode: number): string {
    writeFileSync(keyFile, key);
    chmodSync(keyFile, mode);
    return keyFile;
  }

  function refusal(encryption: Record<string, unknown>): ConfigError {
    try {
      buildConfig({ encryption }, 'rookery.yaml', {}, {}, dir);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  }

  const octal = (modes: number[]) => modes.map((mode) => [mode.toString(8).padStart(4, '0'), mode] as const);

  it.each(octal([0o600, 0o400]))('reads a key file only its owner can access (mode %s)', (_, mode) => {
    const config = buildConfig({ encryption: { keyFile: withMode(mode) } }, 'rookery.yaml', {}, {}, dir);
    expect(config.encryptionKey?.reveal().toString()).toBe(key);
  });

  it.each(octal([0o644, 0o640, 0o604, 0o620, 0o660]))(
    'refuses a key file group or others can access (mode %s), with a hint to chmod 600',
    (shown, mode) => {
      const error = refusal({ keyFile: withMode(mode) });
      expect(error.message).toBe(
        `invalid config in rookery.yaml: encryption.keyFile: '${keyFile}' is accessible by group or others (mode ${shown})`,
      );
      expect(error.hint).toBe(`chmod 600 ${keyFile} (or set encryption.allowReadableKeyFile: true if other accounts must read it)`);
      expect(error.message).not.toContain(key);
    },
  );

  it('accepts a readable key file when encryption.allowReadableKeyFile is set', () => {
    const config = buildConfig({ encryption: { keyFile: withMode(0o644), allowReadableKeyFile: true } }, 'rookery.yaml', {}, {}, dir);
    expect(config.encryptionKey?.reveal().toString()).toBe(key);
  });

  it('still names a key file that cannot be read', () => {
    expect(refusal({ keyFile: join(dir, 'missing.key') }).message).toContain(
      `encryption.keyFile: cannot read '${join(dir, 'missing.key')}'`,
    );
  });
});
