import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
    // promtool checks that the scrape jobs' bearer-token file exists: the compose secret's path is
    // pointed at a file beside a copy of the configuration, nothing else is changed.
    const work = mkdtempSync(join(tmpdir(), 'rookery-promtool-'));
    try {
      const secret = '/run/secrets/prometheus_token';
      const config = readFileSync(join(rules, 'prometheus.yml'), 'utf8');
      expect(config).toContain(secret);
      writeFileSync(join(work, 'prometheus.yml'), config.replaceAll(secret, join(work, 'prometheus_token')));
      writeFileSync(join(work, 'prometheus_token'), 'rky_000000000000_token\n');
      copyFileSync(join(rules, 'rookery-alerts.yml'), join(work, 'rookery-alerts.yml'));
      const checked = promtool('check', 'config', join(work, 'prometheus.yml'));
      expect(checked.output).toContain('SUCCESS: 1 rule files found');
      expect(checked.output).toContain('SUCCESS: 10 rules found');
      expect(checked.status).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('fire for each missed objective and only for it (promtool test rules)', () => {
    const tested = promtool('test', 'rules', join(rules, 'rookery-alerts.test.yml'));
    expect(tested.output).toContain('SUCCESS');
    expect(tested.status).toBe(0);
  });
});
