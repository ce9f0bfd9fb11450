import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../main';

/** One request the fake service saw. */
interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}

type Handler = (request: Seen, response: ServerResponse) => void;

/** A tiny HTTP server standing in for a tier service: it answers with `handler` and records each request. */
async function fakeService(handler: Handler): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const entry = { method: request.method ?? '', url: request.url ?? '', authorization: request.headers.authorization, body };
      seen.push(entry);
      handler(entry, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const RECORD = {
  id: '20261207T120000Z-oltp',
  tier: 'oltp',
  type: 'full',
  method: 'physical',
  status: 'running',
  startedAt: '2026-12-07T12:00:00.000Z',
  finishedAt: null,
  startLsn: null,
  stopLsn: null,
  bytes: null,
  storedBytes: null,
  artifacts: [],
  error: null,
  requestedBy: 'operator',
};

describe('rookery --service: calls and error mapping', () => {
  let work: string;
  let tokenFile: string;
  let stdout: string[];
  let stderr: string[];
  let services: { close: () => Promise<void> }[];
  const run = (args: string[]) => main(['node', 'rookery', ...args]);
  const service = async (handler: Handler) => {
    const started = await fakeService(handler);
    services.push(started);
    return started;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-service-client-'));
    tokenFile = join(work, 'token');
    await writeFile(tokenFile, '# issued 2026-12-07\nrky_0123456789ab_secret-token-value\n', { mode: 0o600 });
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  beforeEach(() => {
    stdout = [];
    stderr = [];
    services = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((text: string | Uint8Array) => stdout.push(String(text)) > 0);
    jest.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => stderr.push(String(text)) > 0);
    delete process.env['ROOKERY_TOKEN'];
    delete process.env['ROOKERY_SERVICE'];
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    delete process.env['ROOKERY_TOKEN'];
    for (const started of services) await started.close();
  });

  it('sends the token from --token-file as a bearer token and prints the listing as a table', async () => {
    const fake = await service((_request, response) => json(response, 200, { backups: [{ ...RECORD, status: 'completed' }] }));
    expect(await run(['--service', fake.url, '--token-file', tokenFile, 'info', '--tier', 'oltp'])).toBe(0);
    expect(fake.seen).toEqual([{ method: 'GET', url: '/backups', authorization: 'Bearer rky_0123456789ab_secret-token-value', body: '' }]);
    expect(stdout.join('')).toMatch(/^id\s+tier\s+type\s+method\s+finished\s+size\s+stored\s+ratio\s+lsn range\s+status\n/);
    expect(stdout.join('')).toMatch(/^20261207T120000Z-oltp\s+oltp\s+full\s+physical\s+-\s+-\s+-\s+-\s+-\s+completed$/m);
  });

  it('takes the token from ROOKERY_TOKEN, and the service from ROOKERY_SERVICE under a path prefix', async () => {
    const fake = await service((_request, response) => json(response, 200, { backups: [] }));
    process.env['ROOKERY_TOKEN'] = 'rky_0123456789ab_from-the-environment';
    process.env['ROOKERY_SERVICE'] = `${fake.url}/rookery/oltp`;
    expect(await run(['info', '--json'])).toBe(0);
    expect(fake.seen.map((request) => [request.url, request.authorization])).toEqual([
      ['/rookery/oltp/backups', 'Bearer rky_0123456789ab_from-the-environment'],
    ]);
    expect(JSON.parse(stdout.join(''))).toEqual({ backups: [] });
  });

  it.each([
    [
      '401 names the refused token',
      401,
      { code: 'UNAUTHENTICATED', message: 'unknown or revoked token' },
      'refused the token (401 unauthenticated): unknown or revoked token (hint: check the token (--token-file or ROOKERY_TOKEN)',
    ],
    [
      '403 names the missing role',
      403,
      { code: 'FORBIDDEN', message: "principal 'auditor' lacks operator on tier oltp" },
      "refused the call (403 forbidden): principal 'auditor' lacks operator on tier oltp (hint: the token's roles or tiers",
    ],
    [
      "another refusal prints the service's message and hint",
      409,
      { code: 'LOCK_HELD', message: "a backup of tier 'oltp' is already running (x)", hint: 'wait for it to finish' },
      "rookery: a backup of tier 'oltp' is already running (x) (hint: wait for it to finish)\n",
    ],
    [
      'a route the service does not have says so',
      404,
      { statusCode: 404, message: 'Cannot GET /backups', error: 'Not Found' },
      'has no route GET /backups (hint: is it a rookery tier service of this version?)',
    ],
  ])('%s: one line, exit 1', async (_case, status, body, line) => {
    const fake = await service((_request, response) => json(response, status, body));
    expect(await run(['--service', fake.url, '--token-file', tokenFile, 'info'])).toBe(1);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toContain(line);
    expect(stderr[0]).toMatch(/^rookery: /);
  });

  it('a 401 without a token says none was given', async () => {
    const fake = await service((_request, response) => json(response, 401, { code: 'UNAUTHENTICATED', message: 'no bearer token' }));
    expect(await run(['--service', fake.url, 'info'])).toBe(1);
    expect(fake.seen[0].authorization).toBeUndefined();
    expect(stderr.join('')).toContain(
      '(401 unauthenticated): no bearer token (hint: no token was given: use --token-file FILE or ROOKERY_TOKEN)',
    );
  });

  it('connection refused names the URL, exit 1', async () => {
    const fake = await fakeService(() => undefined);
    await fake.close();
    expect(await run(['--service', fake.url, '--token-file', tokenFile, 'info'])).toBe(1);
    expect(stderr).toEqual([
      `rookery: cannot reach the service at ${fake.url}: connection refused (ECONNREFUSED) (hint: is the service running, and is --service (or ROOKERY_SERVICE) its URL?)\n`,
    ]);
  });

  describe('backup --service', () => {
    /** A service whose backup reports progress on two reads and ends `finished`. */
    const backupService = (finished: object) => {
      let reads = 0;
      return service((request, response) => {
        if (request.method === 'GET' && request.url === '/backups') return json(response, 200, { backups: [] });
        if (request.method === 'POST' && request.url === '/backups') return json(response, 202, RECORD);
        reads++;
        if (reads <= 2)
          return json(response, 200, { ...RECORD, progress: { phase: 'backup', bytes: reads * 1024 * 1024, totalBytes: 4 * 1024 * 1024 } });
        return json(response, 200, { ...RECORD, ...finished });
      });
    };

    it('starts it, shows its progress as the local backup does, and exits 0 once it completed', async () => {
      const fake = await backupService({
        status: 'completed',
        finishedAt: '2026-12-07T12:00:04.000Z',
        startLsn: '0/2000028',
        stopLsn: '0/2000100',
        bytes: 4 * 1024 * 1024,
        storedBytes: 1024 * 1024,
        artifacts: [{ name: 'base.tar.zst' }],
      });
      expect(
        await run([
          '--service',
          fake.url,
          '--token-file',
          tokenFile,
          '--log-level',
          'info',
          '--progress-interval',
          '0',
          'backup',
          '--tier',
          'oltp',
        ]),
      ).toBe(0);
      expect(fake.seen.slice(0, 2).map((request) => `${request.method} ${request.url} ${request.body}`)).toEqual([
        'GET /backups ',
        'POST /backups {"type":"full"}',
      ]);
      expect(stderr).toEqual([
        `rookery: backup 20261207T120000Z-oltp started on ${fake.url}\n`,
        'rookery: backup oltp: backup 1.0 MiB of ~4.0 MiB (25 %)\n',
        'rookery: backup oltp: backup 2.0 MiB of ~4.0 MiB (50 %)\n',
      ]);
      expect(stdout.join('')).toContain(
        'backup 20261207T120000Z-oltp completed\n  tier oltp, full physical, lsn 0/2000028..0/2000100\n  4.0 MiB → 1.0 MiB stored (4.00x) in 4.0 s',
      );
    });

    it('exits 1 with the reason when it failed on the service', async () => {
      const fake = await backupService({ status: 'failed', error: 'pg_basebackup failed with exit code 1: disk full' });
      expect(await run(['--service', fake.url, '--token-file', tokenFile, 'backup', '--tier', 'oltp', '--json'])).toBe(1);
      expect(JSON.parse(stdout.join(''))).toMatchObject({ status: 'failed' });
      expect(stderr.at(-1)).toBe(
        'rookery: backup 20261207T120000Z-oltp failed on the service: pg_basebackup failed with exit code 1: disk full\n',
      );
    });

    it('refuses (exit 2), starting nothing, when the service backs up another tier than --tier', async () => {
      const fake = await service((_request, response) =>
        json(response, 200, { backups: [{ ...RECORD, tier: 'content', id: 'x-content' }] }),
      );
      expect(await run(['--service', fake.url, '--token-file', tokenFile, 'backup', '--tier', 'oltp'])).toBe(2);
      expect(fake.seen.map((request) => request.method)).toEqual(['GET']);
      expect(stderr.join('')).toContain(`the service at ${fake.url} serves tier content, not oltp`);
    });
  });

  it('restore --service posts the physical request and exits 1 when the restore failed', async () => {
    const restore = {
      id: 'r-1',
      tier: 'oltp',
      kind: 'physical',
      backup: 'latest',
      backupId: null,
      status: 'running',
      target: '/srv/restores/a',
    };
    const fake = await service((request, response) =>
      request.method === 'POST'
        ? json(response, 202, restore)
        : json(response, 200, { ...restore, status: 'failed', error: 'the directory is not empty' }),
    );
    const args = [
      '--service',
      fake.url,
      '--token-file',
      tokenFile,
      'restore',
      '--tier',
      'oltp',
      '--to',
      '/srv/restores/a',
      '--target-lsn',
      '0/3000148',
    ];
    expect(await run(args)).toBe(1);
    expect(JSON.parse(fake.seen[0].body)).toEqual({
      backup: 'latest',
      target: { kind: 'physical', directory: '/srv/restores/a', recoveryTarget: { lsn: '0/3000148' } },
    });
    expect(fake.seen[1].url).toBe('/restores/r-1');
    expect(stderr.at(-1)).toBe('rookery: restore r-1 failed on the service: the directory is not empty\n');
  });

  it('hold --list, hold place and release call GET, POST and DELETE /holds', async () => {
    const hold = { backupId: RECORD.id, tier: 'oltp', reason: 'case 7', heldBy: 'operator', heldAt: '2026-12-07T12:00:00.000Z' };
    const fake = await service((request, response) =>
      json(response, request.method === 'POST' ? 201 : 200, request.method === 'GET' ? { holds: [hold] } : hold),
    );
    const base = ['--service', fake.url, '--token-file', tokenFile, 'hold', '--tier', 'oltp'];
    expect(await run([...base, '--list'])).toBe(0);
    expect(await run([...base, '--backup', RECORD.id, '--reason', 'case 7'])).toBe(0);
    expect(await run([...base, '--backup', RECORD.id, '--release'])).toBe(0);
    expect(fake.seen.map((request) => `${request.method} ${request.url} ${request.body}`)).toEqual([
      'GET /holds ',
      `POST /holds {"backup":"${RECORD.id}","reason":"case 7"}`,
      `DELETE /holds/${RECORD.id} `,
    ]);
    expect(stdout).toEqual([
      `oltp ${RECORD.id}: case 7 (by operator, 2026-12-07T12:00:00.000Z)\n`,
      `legal hold placed on oltp backup ${RECORD.id}: case 7 (by operator, 2026-12-07T12:00:00.000Z)\n`,
      `legal hold released on oltp backup ${RECORD.id}: case 7 (by operator, 2026-12-07T12:00:00.000Z)\n`,
    ]);
  });
});
