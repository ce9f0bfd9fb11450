// Original file: proto/rookery/v1/restore.proto


export interface ListRestoresRequest {
}

export interface ListRestoresRequest__Output {
}
