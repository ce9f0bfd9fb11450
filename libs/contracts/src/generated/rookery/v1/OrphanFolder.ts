// Original file: proto/rookery/v1/retention.proto

import type { Long } from '@grpc/proto-loader';

export interface OrphanFolder {
  'folder'?: (string);
  'newestAt'?: (string);
  'objects'?: (number | string | Long);
  'storedBytes'?: (number | string | Long);
  'reason'?: (string);
}

export interface OrphanFolder__Output {
  'folder': (string);
  'newestAt': (string);
  'objects': (number);
  'storedBytes': (number);
  'reason': (string);
}
