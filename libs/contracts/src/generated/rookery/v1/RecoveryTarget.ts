// Original file: proto/rookery/v1/restore.proto


export interface RecoveryTarget {
  'time'?: (string);
  'lsn'?: (string);
  'name'?: (string);
  'xid'?: (string);
  'inclusive'?: (boolean);
  '_time'?: "time";
  '_lsn'?: "lsn";
  '_name'?: "name";
  '_xid'?: "xid";
  '_inclusive'?: "inclusive";
}

export interface RecoveryTarget__Output {
  'time'?: (string);
  'lsn'?: (string);
  'name'?: (string);
  'xid'?: (string);
  'inclusive'?: (boolean);
  '_time'?: "time";
  '_lsn'?: "lsn";
  '_name'?: "name";
  '_xid'?: "xid";
  '_inclusive'?: "inclusive";
}
