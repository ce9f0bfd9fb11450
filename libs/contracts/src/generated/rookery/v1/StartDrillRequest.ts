// Original file: proto/rookery/v1/drill.proto


export interface StartDrillRequest {
  'tier'?: (string);
}

export interface StartDrillRequest__Output {
  'tier': (string);
}
