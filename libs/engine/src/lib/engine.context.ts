import { RookeryConfig } from '@rookery/config';
import { BackupRepository, RepositoryLock } from '@rookery/repository';
import { ArtifactEncoding } from './artifact.codec';
import type { PostgresTools } from './postgres.tools';

/**
 * Everything a backup, restore or verify needs, built once from the configuration by
 * createEngine(): the primary store's repository and lock, the PostgreSQL tools, and how
 * artifacts are encoded. Services receive it; none of them reads configuration itself.
 */
export interface EngineContext {
  config: RookeryConfig;
  repository: BackupRepository;
  lock: RepositoryLock;
  postgres: PostgresTools;
  encoding: ArtifactEncoding;
  /** Region name recorded in manifests for the primary store. */
  primaryRegion: string;
  /** Who runs the engine, for lock holders and audit: 'cli', 'oltp-backup service'. */
  actor: string;
  version: string;
  /** argv that runs this rookery from a restored server's restore_command (see EngineOptions). */
  selfCommand?: readonly string[];
  /**
   * What a restored server's restore_command / archive_command need from our environment (store
   * credentials, the encryption key): written to a 0600 file of the server's account, never put
   * in the server's own environment.
   */
  restoreCommandEnvironment?: Readonly<Record<string, string>>;
}
