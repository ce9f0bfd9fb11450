/**
 * Libraries the CLI loads only in the commands that use them. Every command module is loaded at
 * start-up (commander needs each command's options), so a top-level import of typeorm (catalog),
 * the compliance and validation libraries or the test harness would cost every invocation — a
 * backup, a restore, each restore_command — about 100 ms before any work starts.
 */
export const load = {
  catalog: () => require('@rookery/catalog') as typeof import('@rookery/catalog'),
  compliance: () => require('@rookery/compliance') as typeof import('@rookery/compliance'),
  validation: () => require('@rookery/validation') as typeof import('@rookery/validation'),
  testing: () => require('@rookery/testing') as typeof import('@rookery/testing'),
};
