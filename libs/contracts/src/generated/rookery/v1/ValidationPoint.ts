// Original file: proto/rookery/v1/compliance.proto


export interface ValidationPoint {
  'backupId'?: (string);
  'at'?: (string);
  'ok'?: (boolean);
  'error'?: (string);
  '_error'?: "error";
}

export interface ValidationPoint__Output {
  'backupId': (string);
  'at': (string);
  'ok': (boolean);
  'error'?: (string);
  '_error'?: "error";
}
