import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

/**
 * docker/prometheus/rookery-alerts.yml evaluated by Prometheus's own promtool (Debian package
 * `prometheus`): the rules parse, and rookery-alerts.test.yml's recorded series make each alert
 * fire for the tier that misses its objective and stay silent for the tier that meets it.
 * content-backup.metrics.int-spec.ts checks that a running service serves every series they read.
 * prometheus.yml, the Prometheus of docker/compose.yaml, is checked the same way (promtool check
 * config, which also checks the rule files it names); compose-stack.spec.ts checks its targets.
 */
const rules = resolve(__dirname, '..', '..', '..', '..', '..', 'docker', 'prometheus');

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: rules, encoding: 'utf8' });
  if (result.error) throw new Error(`cannot run promtool (${result.error.message}): install it with apt-get install -y prometheus`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('Prometheus alert rules (promtool)', () => {
  it('parse', () => {
    const checked = promtool('check', 'rules', join(rules, 'rookery-alerts.yml'));
    expect(checked.output).toContain('SUCCESS: 10 rules found');
    expect(checked.status).toBe(0);
  });

  it('are loaded by the stack Prometheus configuration (promtool check config)', () => {
    const checked = promtool('check', 'config', join(rules, 'prometheus.yml'));
    expect(checked.output).toContain('SUCCESS: 1 rule files found');
    expect(checked.output).toContain('SUCCESS: 10 rules found');
    expect(checked.status).toBe(0);
  });

  it('fire for each missed objective and only for it (promtool test rules)', () => {
    const tested = promtool('test', 'rules', join(rules, 'rookery-alerts.test.yml'));
    expect(tested.output).toContain('SUCCESS');
    expect(tested.status).toBe(0);
  });
});
