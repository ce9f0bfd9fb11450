// Original file: proto/rookery/v1/hold.proto


export interface ListHoldsRequest {
}

export interface ListHoldsRequest__Output {
}
