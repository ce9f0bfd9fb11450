// Original file: proto/rookery/v1/backup.proto


export interface ListBackupsRequest {
}

export interface ListBackupsRequest__Output {
}
