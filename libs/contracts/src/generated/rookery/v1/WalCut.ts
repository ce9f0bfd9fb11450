// Original file: proto/rookery/v1/retention.proto


export interface WalCut {
  'segment'?: (string);
  'backupId'?: (string);
}

export interface WalCut__Output {
  'segment': (string);
  'backupId': (string);
}
