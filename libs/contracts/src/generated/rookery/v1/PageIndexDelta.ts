// Original file: proto/rookery/v1/records.proto


export interface PageIndexDelta {
  'deltaOf'?: (string);
}

export interface PageIndexDelta__Output {
  'deltaOf': (string);
}
