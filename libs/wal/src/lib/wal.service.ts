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
}
