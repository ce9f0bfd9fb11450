// Original file: proto/rookery/v1/backup.proto


export interface GetBackupRequest {
  'id'?: (string);
}

export interface GetBackupRequest__Output {
  'id': (string);
}
