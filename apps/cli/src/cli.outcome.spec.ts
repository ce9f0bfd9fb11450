import { Command } from 'commander';
import { rootProgram, runProgram } from './cli.program';
import { CommandOutcome, Incomplete, reporting } from './cli.outcome';

/** A program with `run` (top level) and `group sub` (nested), both resolving with `outcome`. */
function program(outcome: () => CommandOutcome): Command {
  const root = rootProgram();
  root.addCommand(new Command('run').action(reporting(async () => outcome())).exitOverride());
  const group = new Command('group');
  group.addCommand(
    new Command('sub')
      .option('--flag')
      .action(reporting(async () => outcome()))
      .exitOverride(),
  );
  return root.addCommand(group);
}

describe('runProgram maps what a command reports to the exit status', () => {
  let stderr: string[];
  beforeEach(() => {
    stderr = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => stderr.push(String(text)) > 0);
  });
  afterEach(() => jest.restoreAllMocks());

  it.each([
    ['a top-level command', ['run']],
    ['a nested command with an option', ['group', 'sub', '--flag']],
  ])('%s that did everything exits 0 and prints nothing', async (_name, args) => {
    expect(
      await runProgram(
        program(() => undefined),
        ['node', 'rookery', ...args],
      ),
    ).toBe(0);
    expect(stderr).toEqual([]);
  });

  it.each([
    ['a top-level command', ['run']],
    ['a nested command with an option', ['group', 'sub', '--flag']],
  ])('%s that reports an incomplete run exits 1 with its one line on stderr', async (_name, args) => {
    expect(
      await runProgram(
        program(() => new Incomplete('replication of tier oltp incomplete: region secondary: 2 backup copy(ies) failed')),
        ['node', 'rookery', ...args],
      ),
    ).toBe(1);
    expect(stderr).toEqual(['rookery: replication of tier oltp incomplete: region secondary: 2 backup copy(ies) failed\n']);
  });

  it('an outcome belongs to its own run of the program, not to the next', async () => {
    let next: CommandOutcome = new Incomplete('first run incomplete');
    const shared = () => next;
    expect(await runProgram(program(shared), ['node', 'rookery', 'run'])).toBe(1);
    next = undefined;
    expect(await runProgram(program(shared), ['node', 'rookery', 'run'])).toBe(0);
  });

  it('a command that throws still exits non-zero with its one line', async () => {
    const failing = program(() => {
      throw new Error('store unreachable');
    });
    expect(await runProgram(failing, ['node', 'rookery', 'run'])).toBe(1);
    expect(stderr).toEqual(['rookery: unexpected error: store unreachable\n']);
  });
});
