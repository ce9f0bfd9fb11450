// Original file: proto/rookery/v1/restore.proto


export interface CancelRestoreRequest {
  'id'?: (string);
}

export interface CancelRestoreRequest__Output {
  'id': (string);
}
