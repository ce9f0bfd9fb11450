// Prints the closing line CI reads: "N passed, N failed[, N skipped]". Under the test command
// (tools/test/run-tests.mjs), which runs the demo after jest and prints that line itself with the
// demo counted in, the counts go to the file named by ROOKERY_TEST_SUMMARY_FILE instead.
const { writeFileSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    const file = process.env.ROOKERY_TEST_SUMMARY_FILE;
    if (file) writeFileSync(file, JSON.stringify({ passed: results.numPassedTests, failed, skipped }));
    else process.stdout.write(`\n${summaryLine(results.numPassedTests, failed, skipped)}\n`);
  }
}

function summaryLine(passed, failed, skipped) {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

module.exports = SummaryReporter;
module.exports.summaryLine = summaryLine;
