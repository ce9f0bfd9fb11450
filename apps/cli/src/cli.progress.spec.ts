import { configureLog } from './cli.log';
import { ProgressMeter, describeReading, progressLog } from './cli.progress';

describe('ProgressMeter', () => {
  it('gives no percentage without a total and no rate before a second has passed', () => {
    const meter = new ProgressMeter();
    expect(meter.read({ phase: 'backup', artifact: 'data.dump', bytes: 5 * 1024 * 1024 }, 0)).toEqual({
      step: 'backup data.dump',
      bytes: 5 * 1024 * 1024,
      estimated: true,
    });
  });

  it('measures the rate from the step’s first count, not from zero at that moment', () => {
    const meter = new ProgressMeter();
    // The first report already carries 100 MiB: 100 MiB in 1 ms would read 97.7 GiB/s.
    meter.read({ phase: 'backup', artifact: 'base.tar', bytes: 100 * 1024 * 1024, totalBytes: 4 * 1024 ** 3 }, 1000);
    const reading = meter.read({ phase: 'backup', artifact: 'base.tar', bytes: 300 * 1024 * 1024, totalBytes: 4 * 1024 ** 3 }, 3000);
    expect(reading.rate).toBe(100 * 1024 * 1024);
    expect(describeReading(reading)).toBe('backup base.tar 300.0 MiB of ~4.0 GiB (7 %), 100.0 MiB/s');
  });

  it.each([
    ['an estimate exceeded stays below 100 %', 'backup', 150, 100, 99],
    ['a known total reaches 100 %', 'download', 100, 100, 100],
    ['a known total part done', 'verify', 50, 200, 25],
  ] as const)('%s', (_case, phase, bytes, totalBytes, percent) => {
    expect(new ProgressMeter().read({ phase, bytes, totalBytes }, 0).percent).toBe(percent);
  });
});

describe('progressLog', () => {
  const lines: string[] = [];
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((text) => {
    lines.push(String(text));
    return true;
  });
  afterAll(() => write.mockRestore());
  beforeEach(() => {
    lines.length = 0;
    configureLog({ level: 'info' });
  });

  it('writes a line per step once the interval has passed, then every interval', () => {
    let now = 0;
    const listener = progressLog('backup oltp', 10_000, () => now);
    const event = (bytes: number) => listener({ phase: 'backup', artifact: 'base.tar', bytes, totalBytes: 3 * 1024 ** 3 });
    event(1024);
    now = 9_999;
    event(2048);
    expect(lines).toEqual([]);
    now = 10_000;
    event(1024 ** 3);
    now = 15_000;
    event(2 * 1024 ** 3);
    now = 20_000;
    event(2.5 * 1024 ** 3);
    // The rate: bytes since the step's first count over the time since then.
    expect(lines).toEqual([
      'rookery: backup oltp: backup base.tar 1.0 GiB of ~3.0 GiB (33 %), 102.4 MiB/s\n',
      'rookery: backup oltp: backup base.tar 2.5 GiB of ~3.0 GiB (83 %), 128.0 MiB/s\n',
    ]);
  });

  it('writes nothing below log level info', () => {
    configureLog({ level: 'warn' });
    progressLog('backup oltp', 0)({ phase: 'backup', bytes: 1 });
    expect(lines).toEqual([]);
  });
});
