// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface BackupPoint {
  'backupId'?: (string);
  'type'?: (string);
  'status'?: (string);
  'finishedAt'?: (string);
  'durationMs'?: (number | string | Long);
  'storedBytes'?: (number | string | Long);
  'retentionUntil'?: (string);
  '_durationMs'?: "durationMs";
  '_storedBytes'?: "storedBytes";
  '_retentionUntil'?: "retentionUntil";
}

export interface BackupPoint__Output {
  'backupId': (string);
  'type': (string);
  'status': (string);
  'finishedAt': (string);
  'durationMs'?: (number);
  'storedBytes'?: (number);
  'retentionUntil'?: (string);
  '_durationMs'?: "durationMs";
  '_storedBytes'?: "storedBytes";
  '_retentionUntil'?: "retentionUntil";
}
