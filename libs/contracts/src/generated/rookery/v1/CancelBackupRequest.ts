// Original file: proto/rookery/v1/backup.proto


export interface CancelBackupRequest {
  'id'?: (string);
}

export interface CancelBackupRequest__Output {
  'id': (string);
}
