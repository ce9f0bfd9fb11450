// Original file: proto/rookery/v1/backup.proto


export interface WatchBackupRequest {
  'id'?: (string);
}

export interface WatchBackupRequest__Output {
  'id': (string);
}
