/**
 * Libraries the CLI loads only in the commands that use them. Every command module is loaded at
 * start-up (commander needs each command's options), so a top-level import of typeorm (catalog),
 * the compliance and validation libraries or the demo's seed data would cost every invocation — a
 * backup, a restore, each restore_command — load time before any work starts.
 */
export const load = {
  catalog: () => require('@rookery/catalog') as typeof import('@rookery/catalog'),
  compliance: () => require('@rookery/compliance') as typeof import('@rookery/compliance'),
  validation: () => require('@rookery/validation') as typeof import('@rookery/validation'),
  demo: () => require('@rookery/demo') as typeof import('@rookery/demo'),
};
