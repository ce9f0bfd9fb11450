import { EngineContext } from './engine.context';
import { WalArchiverService } from './wal-archiver.service';
import { WalTransfer } from './wal.transfer';

export * from './wal.transfer';

/**
 * The engine's WAL part: moving files (WalTransfer, which wal-push and wal-get also get alone,
 * without the engine: see createWalEngine) plus rookery check and WAL status, which talk to the
 * tier's server.
 */
export class WalService extends WalTransfer {
  /** rookery check and WAL status: the tier's server against the repository. */
  readonly archiver: WalArchiverService;

  constructor(context: EngineContext) {
    super(context);
    this.archiver = new WalArchiverService(context);
  }
}
