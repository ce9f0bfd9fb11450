// Original file: proto/rookery/v1/retention.proto

import type { Long } from '@grpc/proto-loader';

export interface ExpiredWal {
  'key'?: (string);
  'name'?: (string);
  'storedBytes'?: (number | string | Long);
  'reason'?: (string);
}

export interface ExpiredWal__Output {
  'key': (string);
  'name': (string);
  'storedBytes': (number);
  'reason': (string);
}
