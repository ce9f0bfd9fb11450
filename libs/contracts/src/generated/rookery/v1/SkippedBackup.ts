// Original file: proto/rookery/v1/retention.proto


export interface SkippedBackup {
  'id'?: (string);
  'reason'?: (string);
}

export interface SkippedBackup__Output {
  'id': (string);
  'reason': (string);
}
