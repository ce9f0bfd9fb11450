// Original file: proto/rookery/v1/retention.proto


export interface LocalCopies {
  'configured'?: (boolean);
  'note'?: (string);
}

export interface LocalCopies__Output {
  'configured': (boolean);
  'note': (string);
}
