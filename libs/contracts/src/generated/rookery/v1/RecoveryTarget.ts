// Original file: proto/rookery/v1/restore.proto


export interface RecoveryTarget {
  'time'?: (string);
  'lsn'?: (string);
  'name'?: (string);
  'xid'?: (string);
  '_time'?: "time";
  '_lsn'?: "lsn";
  '_name'?: "name";
  '_xid'?: "xid";
}

export interface RecoveryTarget__Output {
  'time'?: (string);
  'lsn'?: (string);
  'name'?: (string);
  'xid'?: (string);
  '_time'?: "time";
  '_lsn'?: "lsn";
  '_name'?: "name";
  '_xid'?: "xid";
}
