// Original file: proto/rookery/v1/compliance.proto


export interface KeptPastPolicy {
  'backupId'?: (string);
  'retentionUntil'?: (string);
}

export interface KeptPastPolicy__Output {
  'backupId': (string);
  'retentionUntil': (string);
}
