// Original file: proto/rookery/v1/drill.proto


export interface ListDrillsRequest {
  'tier'?: (string);
  '_tier'?: "tier";
}

export interface ListDrillsRequest__Output {
  'tier'?: (string);
  '_tier'?: "tier";
}
