// Original file: proto/rookery/v1/restore.proto


export interface WatchRestoreRequest {
  'id'?: (string);
}

export interface WatchRestoreRequest__Output {
  'id': (string);
}
