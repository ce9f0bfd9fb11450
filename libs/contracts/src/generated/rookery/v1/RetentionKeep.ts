// Original file: proto/rookery/v1/retention.proto

import type { KeptBackup as _rookery_v1_KeptBackup, KeptBackup__Output as _rookery_v1_KeptBackup__Output } from '../../rookery/v1/KeptBackup';
import type { KeptWalRange as _rookery_v1_KeptWalRange, KeptWalRange__Output as _rookery_v1_KeptWalRange__Output } from '../../rookery/v1/KeptWalRange';
import type { OrphanFolder as _rookery_v1_OrphanFolder, OrphanFolder__Output as _rookery_v1_OrphanFolder__Output } from '../../rookery/v1/OrphanFolder';

export interface RetentionKeep {
  'backups'?: (_rookery_v1_KeptBackup)[];
  'wal'?: (_rookery_v1_KeptWalRange)[];
  'orphans'?: (_rookery_v1_OrphanFolder)[];
}

export interface RetentionKeep__Output {
  'backups': (_rookery_v1_KeptBackup__Output)[];
  'wal': (_rookery_v1_KeptWalRange__Output)[];
  'orphans': (_rookery_v1_OrphanFolder__Output)[];
}
