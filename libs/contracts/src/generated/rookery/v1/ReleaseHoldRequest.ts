// Original file: proto/rookery/v1/hold.proto


export interface ReleaseHoldRequest {
  'backup'?: (string);
}

export interface ReleaseHoldRequest__Output {
  'backup': (string);
}
