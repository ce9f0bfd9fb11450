// Original file: proto/rookery/v1/backup.proto

import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from '../../rookery/v1/BackupRecord';

export interface BackupList {
  'backups'?: (_rookery_v1_BackupRecord)[];
}

export interface BackupList__Output {
  'backups': (_rookery_v1_BackupRecord__Output)[];
}
