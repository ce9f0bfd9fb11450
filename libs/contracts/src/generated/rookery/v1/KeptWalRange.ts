// Original file: proto/rookery/v1/retention.proto

import type { Long } from '@grpc/proto-loader';

export interface KeptWalRange {
  'timeline'?: (number);
  'first'?: (string);
  'last'?: (string);
  'files'?: (number | string | Long);
  'reason'?: (string);
}

export interface KeptWalRange__Output {
  'timeline': (number);
  'first': (string);
  'last': (string);
  'files': (number);
  'reason': (string);
}
