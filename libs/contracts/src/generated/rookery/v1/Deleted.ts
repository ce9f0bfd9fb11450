// Original file: proto/rookery/v1/retention.proto

import type { Long } from '@grpc/proto-loader';

export interface Deleted {
  'backups'?: (string)[];
  'walFiles'?: (number | string | Long);
  'orphanFolders'?: (number | string | Long);
  'objects'?: (number | string | Long);
  'bytes'?: (number | string | Long);
}

export interface Deleted__Output {
  'backups': (string)[];
  'walFiles': (number);
  'orphanFolders': (number);
  'objects': (number);
  'bytes': (number);
}
