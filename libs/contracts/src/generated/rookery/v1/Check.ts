// Original file: proto/rookery/v1/records.proto


export interface Check {
  'name'?: (string);
  'ok'?: (boolean);
  'detail'?: (string);
  '_detail'?: "detail";
}

export interface Check__Output {
  'name': (string);
  'ok': (boolean);
  'detail'?: (string);
  '_detail'?: "detail";
}
