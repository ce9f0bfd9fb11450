// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface StreamState {
  'inSync'?: (boolean);
  'at'?: (string);
  'current'?: (boolean);
  'lagBytes'?: (number | string | Long);
  '_lagBytes'?: "lagBytes";
}

export interface StreamState__Output {
  'inSync': (boolean);
  'at': (string);
  'current': (boolean);
  'lagBytes'?: (number);
  '_lagBytes'?: "lagBytes";
}
