// Original file: proto/rookery/v1/restore.proto

import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from '../../rookery/v1/RestoreRecord';

export interface RestoreList {
  'restores'?: (_rookery_v1_RestoreRecord)[];
}

export interface RestoreList__Output {
  'restores': (_rookery_v1_RestoreRecord__Output)[];
}
