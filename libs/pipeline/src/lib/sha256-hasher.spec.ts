import { createHash, randomBytes } from 'node:crypto';
import workerThreads from 'node:worker_threads';
import { createSha256Hasher } from './sha256-hasher';

const MiB = 1024 * 1024;

async function hashAll(chunks: Buffer[]): Promise<string> {
  const hasher = createSha256Hasher(true);
  for (const chunk of chunks) await hasher.update(chunk);
  return hasher.digest();
}

describe('offloaded sha256 hasher', () => {
  let started: jest.SpyInstance;

  beforeEach(() => {
    const RealWorker = workerThreads.Worker;
    started = jest
      .spyOn(workerThreads, 'Worker')
      .mockImplementation((...args: ConstructorParameters<typeof RealWorker>) => new RealWorker(...args));
  });

  afterEach(() => started.mockRestore());

  it.each([
    ['empty', []],
    ['a backup_manifest-sized stream', [randomBytes(300_000), randomBytes(1000)]],
    ['one byte short of a batch', [randomBytes(4 * MiB - 1)]],
  ])('hashes a stream shorter than one batch without starting a worker: %s', async (_name, chunks) => {
    await expect(hashAll(chunks)).resolves.toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    expect(started).not.toHaveBeenCalled();
  });

  it('starts one worker once a batch is full, and gives the plain digest', async () => {
    const chunks = Array.from({ length: 30 }, () => randomBytes(300_000));
    await expect(hashAll(chunks)).resolves.toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    expect(started).toHaveBeenCalledTimes(1);
  });
});
