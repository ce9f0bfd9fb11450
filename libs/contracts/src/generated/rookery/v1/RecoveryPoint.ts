// Original file: proto/rookery/v1/compliance.proto


export interface RecoveryPoint {
  'at'?: (string);
  'source'?: (string);
}

export interface RecoveryPoint__Output {
  'at': (string);
  'source': (string);
}
