// Original file: proto/rookery/v1/records.proto


export interface Tablespace {
  'oid'?: (number);
  'name'?: (string);
  'location'?: (string);
}

export interface Tablespace__Output {
  'oid': (number);
  'name': (string);
  'location': (string);
}
