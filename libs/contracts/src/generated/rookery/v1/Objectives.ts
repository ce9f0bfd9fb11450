// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface Objectives {
  'rpoSeconds'?: (number | string | Long);
  'rtoSeconds'?: (number | string | Long);
  'retentionDays'?: (number | string | Long);
}

export interface Objectives__Output {
  'rpoSeconds': (number);
  'rtoSeconds': (number);
  'retentionDays': (number);
}
