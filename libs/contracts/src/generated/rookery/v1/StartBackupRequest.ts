// Original file: proto/rookery/v1/backup.proto


export interface StartBackupRequest {
  'type'?: (string);
  '_type'?: "type";
}

export interface StartBackupRequest__Output {
  'type'?: (string);
  '_type'?: "type";
}
