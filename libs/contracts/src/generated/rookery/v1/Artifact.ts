// Original file: proto/rookery/v1/records.proto

import type { Tablespace as _rookery_v1_Tablespace, Tablespace__Output as _rookery_v1_Tablespace__Output } from '../../rookery/v1/Tablespace';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from '../../rookery/v1/Compression';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from '../../rookery/v1/Encryption';
import type { IncrementalPages as _rookery_v1_IncrementalPages, IncrementalPages__Output as _rookery_v1_IncrementalPages__Output } from '../../rookery/v1/IncrementalPages';
import type { PageIndexDelta as _rookery_v1_PageIndexDelta, PageIndexDelta__Output as _rookery_v1_PageIndexDelta__Output } from '../../rookery/v1/PageIndexDelta';
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
  'incremental'?: (_rookery_v1_IncrementalPages | null);
  'pageIndex'?: (_rookery_v1_PageIndexDelta | null);
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
  'incremental': (_rookery_v1_IncrementalPages__Output | null);
  'pageIndex': (_rookery_v1_PageIndexDelta__Output | null);
  '_logicalSha256'?: "logicalSha256";
}
