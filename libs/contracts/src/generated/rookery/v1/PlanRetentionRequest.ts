// Original file: proto/rookery/v1/retention.proto


export interface PlanRetentionRequest {
}

export interface PlanRetentionRequest__Output {
}
