// Original file: proto/rookery/v1/restore.proto


export interface GetRestoreRequest {
  'id'?: (string);
}

export interface GetRestoreRequest__Output {
  'id': (string);
}
