// Original file: proto/rookery/v1/restore.proto


export interface LogicalTarget {
  'url'?: (string);
  'clean'?: (boolean);
  'table'?: (string);
  'schema'?: (string);
  '_clean'?: "clean";
  '_table'?: "table";
  '_schema'?: "schema";
}

export interface LogicalTarget__Output {
  'url': (string);
  'clean'?: (boolean);
  'table'?: (string);
  'schema'?: (string);
  '_clean'?: "clean";
  '_table'?: "table";
  '_schema'?: "schema";
}
