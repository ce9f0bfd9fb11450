// Original file: proto/rookery/v1/restore.proto

import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from '../../rookery/v1/RestoreRecord';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from '../../rookery/v1/Progress';

export interface RestoreProgressUpdate {
  'restore'?: (_rookery_v1_RestoreRecord | null);
  'progress'?: (_rookery_v1_Progress | null);
}

export interface RestoreProgressUpdate__Output {
  'restore': (_rookery_v1_RestoreRecord__Output | null);
  'progress': (_rookery_v1_Progress__Output | null);
}
