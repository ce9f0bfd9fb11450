// Original file: proto/rookery/v1/compliance.proto


export interface ExpiredEarly {
  'backupId'?: (string);
  'retentionUntil'?: (string);
  'expiredAt'?: (string);
}

export interface ExpiredEarly__Output {
  'backupId': (string);
  'retentionUntil': (string);
  'expiredAt': (string);
}
