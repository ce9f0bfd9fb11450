// Original file: proto/rookery/v1/records.proto


export interface Compression {
  'codec'?: (string);
  'level'?: (number);
  'location'?: (string);
  '_location'?: "location";
}

export interface Compression__Output {
  'codec': (string);
  'level': (number);
  'location'?: (string);
  '_location'?: "location";
}
