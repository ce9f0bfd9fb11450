import { resolve } from 'node:path';
import { Command } from 'commander';
import { RookeryConfig } from '@rookery/config';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { GlobalOptions, configFor } from './cli.config';
import { log } from './cli.log';
import { rookeryVersion } from './cli.version';

// Moved to cli.config (no engine import there: the WAL commands' own entry uses them).
export type { GlobalOptions } from './cli.config';
export { collect, configFor, parseTier, parseTime } from './cli.config';

/** RookeryConfig.source when no config file was read (see loadConfig). */
const BUILT_IN_CONFIG_SOURCE = 'built-in defaults';

/**
 * How a restored server runs this same rookery for its restore_command: this node binary, this
 * script, and the configuration this invocation used (the config file, --repo URLs: store URLs
 * carry no secrets). Absolute paths, since the server runs it from its own directory.
 */
export function selfCommand(command: Command, config: RookeryConfig): string[] {
  const options = command.optsWithGlobals<GlobalOptions>();
  const argv = [process.execPath, resolve(process.argv[1] ?? 'bin/rookery.js')];
  if (config.source !== BUILT_IN_CONFIG_SOURCE) argv.push('--config', resolve(config.source));
  if (options.repo?.length || config.source === BUILT_IN_CONFIG_SOURCE) {
    for (const url of config.repositories) argv.push('--repo', url);
  }
  return argv;
}

/** Runs `work` with an engine built from the command's configuration, and closes it after. */
export async function withEngine<T>(command: Command, work: (engine: RookeryEngine) => Promise<T>): Promise<T> {
  const config = configFor(command);
  const engine = await createEngine(config, { actor: 'cli', selfCommand: selfCommand(command, config), version: rookeryVersion() });
  log.debug(`settings from ${config.source}, repository ${engine.store.description}`);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}
