// Original file: proto/rookery/v1/records.proto

import type { Long } from '@grpc/proto-loader';

export interface Progress {
  'phase'?: (string);
  'bytes'?: (number | string | Long);
  'totalBytes'?: (number | string | Long);
  '_totalBytes'?: "totalBytes";
}

export interface Progress__Output {
  'phase': (string);
  'bytes': (number);
  'totalBytes'?: (number);
  '_totalBytes'?: "totalBytes";
}
