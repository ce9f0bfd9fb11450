// Original file: proto/rookery/v1/retention.proto


export interface KeptBackup {
  'id'?: (string);
  'type'?: (string);
  'retainUntil'?: (string);
  'reasons'?: (string)[];
}

export interface KeptBackup__Output {
  'id': (string);
  'type': (string);
  'retainUntil': (string);
  'reasons': (string)[];
}
