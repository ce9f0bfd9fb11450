import { RookeryError, TierName } from '@rookery/core';
import { WalArchiverService } from './wal-archiver.service';
import { WalContext } from './wal.context';
import { WalTransfer } from './wal.transfer';

export * from './wal.transfer';

/**
 * The WAL services the engine holds: moving files (WalTransfer, which wal-push and wal-get also get alone,
 * without the engine: see createWalEngine) plus rookery check and WAL status, which talk to the
 * tier's server.
 */
export class WalService extends WalTransfer {
  /** rookery check and WAL status: the tier's server against the repository. */
  readonly archiver: WalArchiverService;

  constructor(context: WalContext) {
    super(context);
    this.archiver = new WalArchiverService(context);
  }

  /**
   * `verify --wal --deep`: every archived WAL file of the tier re-read and authenticated
   * (WalTransfer.authenticate), one verdict each; a failure does not stop the others.
   */
  async verifyArchive(
    tier: TierName,
    options: { signal?: AbortSignal; onProgress?: (event: WalVerifyProgress) => void } = {},
  ): Promise<WalFileVerification[]> {
    const files = await this.archive.list(tier);
    const totalBytes = files.reduce((sum, file) => sum + file.storedBytes, 0);
    const verdicts: WalFileVerification[] = [];
    let done = 0;
    for (const file of files) {
      options.signal?.throwIfAborted();
      try {
        await this.authenticate(tier, file, options);
        verdicts.push({ name: file.file.name, key: file.key, ok: true });
      } catch (error) {
        if (options.signal?.aborted || !(error instanceof RookeryError)) throw error;
        verdicts.push({ name: file.file.name, key: file.key, ok: false, problem: error.message });
      }
      done += file.storedBytes;
      options.onProgress?.({ phase: 'verify', artifact: file.file.name, bytes: done, totalBytes });
    }
    return verdicts;
  }
}

/** Progress of `verify --wal --deep`: bytes of stored objects re-read so far (the engine's ProgressEvent takes it). */
export interface WalVerifyProgress {
  phase: 'verify';
  /** The WAL file just re-read. */
  artifact: string;
  bytes: number;
  totalBytes: number;
}

/** One archived WAL file as `verify --wal --deep` found it. */
export interface WalFileVerification {
  name: string;
  key: string;
  ok: boolean;
  problem?: string;
}
