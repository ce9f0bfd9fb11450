// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface DrillPoint {
  'backupId'?: (string);
  'finishedAt'?: (string);
  'restoreSeconds'?: (number | string);
  'rtoSeconds'?: (number | string | Long);
  'withinRto'?: (boolean);
  'ok'?: (boolean);
  'error'?: (string);
  '_backupId'?: "backupId";
  '_error'?: "error";
}

export interface DrillPoint__Output {
  'backupId'?: (string);
  'finishedAt': (string);
  'restoreSeconds': (number);
  'rtoSeconds': (number);
  'withinRto': (boolean);
  'ok': (boolean);
  'error'?: (string);
  '_backupId'?: "backupId";
  '_error'?: "error";
}
