// Original file: proto/rookery/v1/compliance.proto


export interface LastGoodFull {
  'backupId'?: (string);
  'finishedAt'?: (string);
  'validated'?: (boolean);
}

export interface LastGoodFull__Output {
  'backupId': (string);
  'finishedAt': (string);
  'validated': (boolean);
}
