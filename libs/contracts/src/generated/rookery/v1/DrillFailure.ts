// Original file: proto/rookery/v1/drill.proto


export interface DrillFailure {
  'code'?: (string);
  'message'?: (string);
  'retryable'?: (boolean);
}

export interface DrillFailure__Output {
  'code': (string);
  'message': (string);
  'retryable': (boolean);
}
