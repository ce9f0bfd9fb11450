// Original file: proto/rookery/v1/backup.proto

import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from '../../rookery/v1/BackupRecord';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from '../../rookery/v1/Progress';

export interface BackupProgressUpdate {
  'backup'?: (_rookery_v1_BackupRecord | null);
  'progress'?: (_rookery_v1_Progress | null);
}

export interface BackupProgressUpdate__Output {
  'backup': (_rookery_v1_BackupRecord__Output | null);
  'progress': (_rookery_v1_Progress__Output | null);
}
