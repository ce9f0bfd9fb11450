// Original file: proto/rookery/v1/records.proto

import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from '../../rookery/v1/Progress';
import type { Long } from '@grpc/proto-loader';

export interface RestoreRecord {
  'id'?: (string);
  'tier'?: (string);
  'kind'?: (string);
  'backup'?: (string);
  'backupId'?: (string);
  'status'?: (string);
  'startedAt'?: (string);
  'finishedAt'?: (string);
  'target'?: (string);
  'bytes'?: (number | string | Long);
  'error'?: (string);
  'requestedBy'?: (string);
  'backupsApplied'?: (string)[];
  'progress'?: (_rookery_v1_Progress | null);
  '_backupId'?: "backupId";
  '_finishedAt'?: "finishedAt";
  '_bytes'?: "bytes";
  '_error'?: "error";
}

export interface RestoreRecord__Output {
  'id': (string);
  'tier': (string);
  'kind': (string);
  'backup': (string);
  'backupId'?: (string);
  'status': (string);
  'startedAt': (string);
  'finishedAt'?: (string);
  'target': (string);
  'bytes'?: (number);
  'error'?: (string);
  'requestedBy': (string);
  'backupsApplied': (string)[];
  'progress': (_rookery_v1_Progress__Output | null);
  '_backupId'?: "backupId";
  '_finishedAt'?: "finishedAt";
  '_bytes'?: "bytes";
  '_error'?: "error";
}
