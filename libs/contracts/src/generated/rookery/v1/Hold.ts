// Original file: proto/rookery/v1/records.proto


export interface Hold {
  'backupId'?: (string);
  'tier'?: (string);
  'reason'?: (string);
  'heldBy'?: (string);
  'heldAt'?: (string);
}

export interface Hold__Output {
  'backupId': (string);
  'tier': (string);
  'reason': (string);
  'heldBy': (string);
  'heldAt': (string);
}
