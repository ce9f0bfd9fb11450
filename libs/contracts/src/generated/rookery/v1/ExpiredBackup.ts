// Original file: proto/rookery/v1/retention.proto

import type { Long } from '@grpc/proto-loader';

export interface ExpiredBackup {
  'id'?: (string);
  'type'?: (string);
  'method'?: (string);
  'startedAt'?: (string);
  'finishedAt'?: (string);
  'retainUntil'?: (string);
  'storedBytes'?: (number | string | Long);
  'reason'?: (string);
}

export interface ExpiredBackup__Output {
  'id': (string);
  'type': (string);
  'method': (string);
  'startedAt': (string);
  'finishedAt': (string);
  'retainUntil': (string);
  'storedBytes': (number);
  'reason': (string);
}
