import { Command } from 'commander';
import { IntegrityError } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { progressReporter } from '../cli.progress';

/**
 * `rookery repository sign --tier T`: the upgrade of a repository written before a signing key
 * was configured. Each unsigned manifest is signed once every artifact of its backup verified, and
 * the WAL archive's system record once it names the system of the tier's newest physical backup;
 * a backup that does not verify, or a manifest altered or signed by an unknown key, is left as it
 * was, named, and the command exits non-zero. Running it again signs nothing new. It trusts the
 * repository as it is when it runs (an unsigned forgery whose artifacts verify would be signed):
 * run it once, when signing is first configured, on a repository not open to others' writes.
 */
export function repositoryCommand(): Command {
  const repository = new Command('repository').description('the repository itself');
  repository.addCommand(
    new Command('sign')
      .description("sign the tier's unsigned manifests (each after its backup verifies) and WAL system record with the configured key")
      .requiredOption('--tier <tier>', 'tier whose manifests to sign')
      .option('--json', 'print the outcome per manifest as JSON')
      .action(async (options: GlobalOptions, command: Command) => {
        const tier = parseTier(options.tier) ?? 'oltp';
        const progress = progressReporter(!options.json, `sign ${tier}`);
        const results = await withEngine(command, (engine) =>
          engine.signManifests(tier, { onProgress: progress.listener }).finally(progress.stop),
        );
        if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        else {
          for (const result of results) {
            const label = { signed: 'signed ', current: 'current', failed: 'FAILED ' }[result.outcome];
            process.stdout.write(`${label} ${result.backup}${result.problem ? `: ${result.problem}` : ''}\n`);
          }
        }
        const failed = results.filter((result) => result.outcome === 'failed');
        if (failed.length) {
          throw new IntegrityError(
            `${failed.length} record(s) of tier '${tier}' left unsigned, the first '${failed[0].key}': ${failed[0].problem}`,
            {
              hint: 'a backup that does not verify must not be signed; restore another backup, or remove it once it is no longer needed',
            },
          );
        }
      })
      .exitOverride(),
  );
  return repository;
}
