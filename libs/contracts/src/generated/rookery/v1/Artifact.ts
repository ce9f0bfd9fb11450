// Original file: proto/rookery/v1/records.proto

import type { Tablespace as _rookery_v1_Tablespace, Tablespace__Output as _rookery_v1_Tablespace__Output } from '../../rookery/v1/Tablespace';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from '../../rookery/v1/Compression';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from '../../rookery/v1/Encryption';
import type { Long } from '@grpc/proto-loader';

export interface Artifact {
  'name'?: (string);
  'kind'?: (string);
  'tablespace'?: (_rookery_v1_Tablespace | null);
  'bytes'?: (number | string | Long);
  'storedBytes'?: (number | string | Long);
  'sha256'?: (string);
  'logicalSha256'?: (string);
  'compression'?: (_rookery_v1_Compression | null);
  'encryption'?: (_rookery_v1_Encryption | null);
  '_logicalSha256'?: "logicalSha256";
}

export interface Artifact__Output {
  'name': (string);
  'kind': (string);
  'tablespace': (_rookery_v1_Tablespace__Output | null);
  'bytes': (number);
  'storedBytes': (number);
  'sha256': (string);
  'logicalSha256'?: (string);
  'compression': (_rookery_v1_Compression__Output | null);
  'encryption': (_rookery_v1_Encryption__Output | null);
  '_logicalSha256'?: "logicalSha256";
}
