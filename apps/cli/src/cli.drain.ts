/**
 * What failWhenDrained needs of the process: its beforeExit event, stderr and exit code. Node
 * built-ins only: bin/rookery.js loads this before anything else, for the WAL fast paths too.
 */
export interface DrainedProcess {
  on(event: 'beforeExit', listener: () => void): unknown;
  off(event: 'beforeExit', listener: () => void): unknown;
  stderr: { write(text: string): unknown };
  exitCode?: number | string | null;
}

/** EXIT.failure of cli.errors (not imported: it loads the core library). */
const EXIT_FAILURE = 1;

/**
 * Node exits with status 0 when its event loop has nothing left to do, whether or not the command
 * finished: a command whose promise never settles (a stream nobody resumes, a callback never
 * called) would end as a silent success, a backup that did not happen looking as if it had. When
 * the loop drains before `running` settled, this says so on stderr and makes the exit non-zero.
 */
export function failWhenDrained(command: string, running: Promise<unknown>, host: DrainedProcess = process): void {
  let reported = false;
  const onDrained = () => {
    if (reported) return;
    reported = true;
    host.stderr.write(
      `rookery: ${command} stopped before it finished: nothing was left running that could complete it, so it ended without a result ` +
        '(this is a bug; please report it with the command line and this output)\n',
    );
    host.exitCode = EXIT_FAILURE;
  };
  host.on('beforeExit', onDrained);
  const settled = () => void host.off('beforeExit', onDrained);
  running.then(settled, settled);
}
