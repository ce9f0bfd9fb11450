import { Command } from 'commander';

/**
 * A command that ran to its end without doing everything it was asked (a tier not restored, a
 * copy that failed, an artifact that did not move): what it printed stays a report, and the
 * summary is the one line on stderr that says what is missing.
 */
export class Incomplete {
  constructor(readonly summary: string) {}
}

/** What a command's action resolves with: nothing when it did everything it was asked. */
export type CommandOutcome = Incomplete | undefined;

const outcomes = new WeakMap<Command, Incomplete>();

/**
 * The action of a command whose outcome decides the exit status. Commander drops what an action
 * returns, so this keeps an Incomplete on the root program, where runProgram (the one place that
 * maps outcomes to exit statuses) finds it; commands never set process.exitCode themselves.
 */
export function reporting<A extends unknown[]>(action: (...args: A) => Promise<CommandOutcome>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const outcome = await action(...args);
    // Commander passes the command itself last (after the arguments and the options).
    if (outcome) outcomes.set(rootOf(args[args.length - 1] as Command), outcome);
  };
}

/** The Incomplete a command of `program` reported in this run, if any. */
export function outcomeOf(program: Command): Incomplete | undefined {
  return outcomes.get(program);
}

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}
