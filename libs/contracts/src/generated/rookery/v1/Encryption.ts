// Original file: proto/rookery/v1/records.proto


export interface Encryption {
  'algorithm'?: (string);
  'keyId'?: (string);
  'bound'?: (boolean);
  '_keyId'?: "keyId";
  '_bound'?: "bound";
}

export interface Encryption__Output {
  'algorithm': (string);
  'keyId'?: (string);
  'bound'?: (boolean);
  '_keyId'?: "keyId";
  '_bound'?: "bound";
}
