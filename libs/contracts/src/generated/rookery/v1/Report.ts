// Original file: proto/rookery/v1/compliance.proto


export interface Report {
  'format'?: (string);
  'contentType'?: (string);
  'text'?: (string);
}

export interface Report__Output {
  'format': (string);
  'contentType': (string);
  'text': (string);
}
