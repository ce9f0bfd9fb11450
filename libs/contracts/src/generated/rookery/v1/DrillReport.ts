// Original file: proto/rookery/v1/drill.proto

import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from '../../rookery/v1/Check';
import type { Long } from '@grpc/proto-loader';

export interface DrillReport {
  'backupId'?: (string);
  'tier'?: (string);
  'method'?: (string);
  'ok'?: (boolean);
  'restoreMs'?: (number | string | Long);
  'totalMs'?: (number | string | Long);
  'rtoSeconds'?: (number | string | Long);
  'withinRto'?: (boolean);
  'recovery'?: (string);
  'checks'?: (_rookery_v1_Check)[];
  'startedAt'?: (string);
  'finishedAt'?: (string);
}

export interface DrillReport__Output {
  'backupId': (string);
  'tier': (string);
  'method': (string);
  'ok': (boolean);
  'restoreMs': (number);
  'totalMs': (number);
  'rtoSeconds': (number);
  'withinRto': (boolean);
  'recovery': (string);
  'checks': (_rookery_v1_Check__Output)[];
  'startedAt': (string);
  'finishedAt': (string);
}
