// Original file: proto/rookery/v1/retention.proto

import type { ExpiredBackup as _rookery_v1_ExpiredBackup, ExpiredBackup__Output as _rookery_v1_ExpiredBackup__Output } from '../../rookery/v1/ExpiredBackup';
import type { ExpiredWal as _rookery_v1_ExpiredWal, ExpiredWal__Output as _rookery_v1_ExpiredWal__Output } from '../../rookery/v1/ExpiredWal';
import type { OrphanFolder as _rookery_v1_OrphanFolder, OrphanFolder__Output as _rookery_v1_OrphanFolder__Output } from '../../rookery/v1/OrphanFolder';

export interface RetentionExpire {
  'backups'?: (_rookery_v1_ExpiredBackup)[];
  'wal'?: (_rookery_v1_ExpiredWal)[];
  'orphans'?: (_rookery_v1_OrphanFolder)[];
}

export interface RetentionExpire__Output {
  'backups': (_rookery_v1_ExpiredBackup__Output)[];
  'wal': (_rookery_v1_ExpiredWal__Output)[];
  'orphans': (_rookery_v1_OrphanFolder__Output)[];
}
