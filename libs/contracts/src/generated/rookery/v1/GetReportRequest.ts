// Original file: proto/rookery/v1/compliance.proto


export interface GetReportRequest {
  'format'?: (string);
  'since'?: (string);
  'until'?: (string);
  '_since'?: "since";
  '_until'?: "until";
}

export interface GetReportRequest__Output {
  'format': (string);
  'since'?: (string);
  'until'?: (string);
  '_since'?: "since";
  '_until'?: "until";
}
