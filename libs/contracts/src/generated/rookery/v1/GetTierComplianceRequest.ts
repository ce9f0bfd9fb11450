// Original file: proto/rookery/v1/compliance.proto


export interface GetTierComplianceRequest {
  'tier'?: (string);
  'since'?: (string);
  'until'?: (string);
  '_since'?: "since";
  '_until'?: "until";
}

export interface GetTierComplianceRequest__Output {
  'tier': (string);
  'since'?: (string);
  'until'?: (string);
  '_since'?: "since";
  '_until'?: "until";
}
