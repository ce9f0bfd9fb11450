// Original file: proto/rookery/v1/compliance.proto


export interface LintFinding {
  'tier'?: (string);
  'severity'?: (string);
  'rule'?: (string);
  'message'?: (string);
  'acknowledged'?: (string);
  '_acknowledged'?: "acknowledged";
}

export interface LintFinding__Output {
  'tier': (string);
  'severity': (string);
  'rule': (string);
  'message': (string);
  'acknowledged'?: (string);
  '_acknowledged'?: "acknowledged";
}
