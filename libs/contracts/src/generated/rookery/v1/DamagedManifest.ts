// Original file: proto/rookery/v1/retention.proto


export interface DamagedManifest {
  'key'?: (string);
  'problem'?: (string);
  'hint'?: (string);
  '_hint'?: "hint";
}

export interface DamagedManifest__Output {
  'key': (string);
  'problem': (string);
  'hint'?: (string);
  '_hint'?: "hint";
}
