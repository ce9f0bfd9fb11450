// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface ReplicationSummary {
  'copies'?: (number | string | Long);
  'failures'?: (number | string | Long);
  'lastCopyAt'?: (string);
  '_lastCopyAt'?: "lastCopyAt";
}

export interface ReplicationSummary__Output {
  'copies': (number);
  'failures': (number);
  'lastCopyAt'?: (string);
  '_lastCopyAt'?: "lastCopyAt";
}
