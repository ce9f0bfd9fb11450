// Original file: proto/rookery/v1/hold.proto


export interface PlaceHoldRequest {
  'backup'?: (string);
  'reason'?: (string);
}

export interface PlaceHoldRequest__Output {
  'backup': (string);
  'reason': (string);
}
