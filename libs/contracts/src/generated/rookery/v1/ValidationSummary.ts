// Original file: proto/rookery/v1/compliance.proto

import type { Long } from '@grpc/proto-loader';

export interface ValidationSummary {
  'completed'?: (number | string | Long);
  'validated'?: (number | string | Long);
  'coverage'?: (number | string);
  'openFailures'?: (string)[];
  '_coverage'?: "coverage";
}

export interface ValidationSummary__Output {
  'completed': (number);
  'validated': (number);
  'coverage'?: (number);
  'openFailures': (string)[];
  '_coverage'?: "coverage";
}
