// Jest test sequencer of the root config: the longest suites start first, so that the two CI
// workers finish together instead of one running a 7-minute suite alone at the end. Jest's own
// sequencer orders by the durations of its last run, which a fresh CI clone does not have (it
// falls back to file size, and a long integration suite can be a small file). Without them, the
// durations of the last full CI run (suite-seconds.json) stand in, and a suite not listed there
// is estimated by its kind (integration suites start clusters and servers), then its size.
const { readFileSync } = require('node:fs');
const { join, relative } = require('node:path');
const DefaultSequencer = require('@jest/test-sequencer').default;

const root = join(__dirname, '..', '..');
const knownSeconds = JSON.parse(readFileSync(join(__dirname, 'suite-seconds.json'), 'utf8')).seconds;
/** Estimates for a suite that is neither in jest's cache nor in suite-seconds.json. */
const UNLISTED_INTEGRATION_MS = 30_000;
const UNLISTED_UNIT_MS = 3_000;

class SlowFirstSequencer extends DefaultSequencer {
  /** Milliseconds the suite is expected to take: jest's record of it, else the listed time, else the estimate. */
  time(test) {
    const recorded = super.time(test);
    if (recorded != null) return recorded;
    const listed = knownSeconds[relative(root, test.path)];
    if (listed != null) return listed * 1000;
    const size = test.context.hasteFS.getSize(test.path) ?? 0;
    // The size (bytes, about 1 ms per KB) only orders suites of the same kind.
    return (test.path.endsWith('.int-spec.ts') ? UNLISTED_INTEGRATION_MS : UNLISTED_UNIT_MS) + size / 1000;
  }
}

module.exports = SlowFirstSequencer;
