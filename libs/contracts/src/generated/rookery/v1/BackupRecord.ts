// Original file: proto/rookery/v1/records.proto

import type { Artifact as _rookery_v1_Artifact, Artifact__Output as _rookery_v1_Artifact__Output } from '../../rookery/v1/Artifact';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from '../../rookery/v1/Progress';
import type { Long } from '@grpc/proto-loader';

export interface BackupRecord {
  'id'?: (string);
  'tier'?: (string);
  'type'?: (string);
  'method'?: (string);
  'status'?: (string);
  'startedAt'?: (string);
  'finishedAt'?: (string);
  'startLsn'?: (string);
  'stopLsn'?: (string);
  'bytes'?: (number | string | Long);
  'storedBytes'?: (number | string | Long);
  'artifacts'?: (_rookery_v1_Artifact)[];
  'error'?: (string);
  'requestedBy'?: (string);
  'progress'?: (_rookery_v1_Progress | null);
  'parent'?: (string);
  '_finishedAt'?: "finishedAt";
  '_startLsn'?: "startLsn";
  '_stopLsn'?: "stopLsn";
  '_bytes'?: "bytes";
  '_storedBytes'?: "storedBytes";
  '_error'?: "error";
  '_requestedBy'?: "requestedBy";
  '_parent'?: "parent";
}

export interface BackupRecord__Output {
  'id': (string);
  'tier': (string);
  'type': (string);
  'method': (string);
  'status': (string);
  'startedAt': (string);
  'finishedAt'?: (string);
  'startLsn'?: (string);
  'stopLsn'?: (string);
  'bytes'?: (number);
  'storedBytes'?: (number);
  'artifacts': (_rookery_v1_Artifact__Output)[];
  'error'?: (string);
  'requestedBy'?: (string);
  'progress': (_rookery_v1_Progress__Output | null);
  'parent'?: (string);
  '_finishedAt'?: "finishedAt";
  '_startLsn'?: "startLsn";
  '_stopLsn'?: "stopLsn";
  '_bytes'?: "bytes";
  '_storedBytes'?: "storedBytes";
  '_error'?: "error";
  '_requestedBy'?: "requestedBy";
  '_parent'?: "parent";
}
