// Original file: proto/rookery/v1/drill.proto

import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from '../../rookery/v1/Check';
import type { DrillFailure as _rookery_v1_DrillFailure, DrillFailure__Output as _rookery_v1_DrillFailure__Output } from '../../rookery/v1/DrillFailure';
import type { Long } from '@grpc/proto-loader';

export interface DrillRecord {
  'eventId'?: (string);
  'ok'?: (boolean);
  'backupId'?: (string);
  'tier'?: (string);
  'restoreMs'?: (number | string | Long);
  'rtoSeconds'?: (number | string | Long);
  'withinRto'?: (boolean);
  'checks'?: (_rookery_v1_Check)[];
  'startedAt'?: (string);
  'finishedAt'?: (string);
  'failedAt'?: (string);
  'durationMs'?: (number | string | Long);
  'error'?: (_rookery_v1_DrillFailure | null);
  '_backupId'?: "backupId";
  '_restoreMs'?: "restoreMs";
  '_withinRto'?: "withinRto";
  '_startedAt'?: "startedAt";
  '_finishedAt'?: "finishedAt";
  '_failedAt'?: "failedAt";
  '_durationMs'?: "durationMs";
}

export interface DrillRecord__Output {
  'eventId': (string);
  'ok': (boolean);
  'backupId'?: (string);
  'tier': (string);
  'restoreMs'?: (number);
  'rtoSeconds': (number);
  'withinRto'?: (boolean);
  'checks': (_rookery_v1_Check__Output)[];
  'startedAt'?: (string);
  'finishedAt'?: (string);
  'failedAt'?: (string);
  'durationMs'?: (number);
  'error': (_rookery_v1_DrillFailure__Output | null);
  '_backupId'?: "backupId";
  '_restoreMs'?: "restoreMs";
  '_withinRto'?: "withinRto";
  '_startedAt'?: "startedAt";
  '_finishedAt'?: "finishedAt";
  '_failedAt'?: "failedAt";
  '_durationMs'?: "durationMs";
}
