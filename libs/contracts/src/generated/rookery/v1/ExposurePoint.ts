// Original file: proto/rookery/v1/compliance.proto


export interface ExposurePoint {
  'at'?: (string);
  'exposureSeconds'?: (number | string);
}

export interface ExposurePoint__Output {
  'at': (string);
  'exposureSeconds': (number);
}
