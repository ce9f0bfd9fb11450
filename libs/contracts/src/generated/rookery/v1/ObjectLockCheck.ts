// Original file: proto/rookery/v1/retention.proto


export interface ObjectLockCheck {
  'checked'?: (boolean);
  'detail'?: (string);
}

export interface ObjectLockCheck__Output {
  'checked': (boolean);
  'detail': (string);
}
