import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Artifact as _rookery_v1_Artifact, Artifact__Output as _rookery_v1_Artifact__Output } from './rookery/v1/Artifact';
import type { BackupList as _rookery_v1_BackupList, BackupList__Output as _rookery_v1_BackupList__Output } from './rookery/v1/BackupList';
import type { BackupProgressUpdate as _rookery_v1_BackupProgressUpdate, BackupProgressUpdate__Output as _rookery_v1_BackupProgressUpdate__Output } from './rookery/v1/BackupProgressUpdate';
import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from './rookery/v1/BackupRecord';
import type { BackupServiceClient as _rookery_v1_BackupServiceClient, BackupServiceDefinition as _rookery_v1_BackupServiceDefinition } from './rookery/v1/BackupService';
import type { CancelBackupRequest as _rookery_v1_CancelBackupRequest, CancelBackupRequest__Output as _rookery_v1_CancelBackupRequest__Output } from './rookery/v1/CancelBackupRequest';
import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from './rookery/v1/Check';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from './rookery/v1/Compression';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from './rookery/v1/Encryption';
import type { GetBackupRequest as _rookery_v1_GetBackupRequest, GetBackupRequest__Output as _rookery_v1_GetBackupRequest__Output } from './rookery/v1/GetBackupRequest';
import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from './rookery/v1/Hold';
import type { IncrementalPages as _rookery_v1_IncrementalPages, IncrementalPages__Output as _rookery_v1_IncrementalPages__Output } from './rookery/v1/IncrementalPages';
import type { ListBackupsRequest as _rookery_v1_ListBackupsRequest, ListBackupsRequest__Output as _rookery_v1_ListBackupsRequest__Output } from './rookery/v1/ListBackupsRequest';
import type { PageIndexDelta as _rookery_v1_PageIndexDelta, PageIndexDelta__Output as _rookery_v1_PageIndexDelta__Output } from './rookery/v1/PageIndexDelta';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from './rookery/v1/Progress';
import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from './rookery/v1/RestoreRecord';
import type { StartBackupRequest as _rookery_v1_StartBackupRequest, StartBackupRequest__Output as _rookery_v1_StartBackupRequest__Output } from './rookery/v1/StartBackupRequest';
import type { Tablespace as _rookery_v1_Tablespace, Tablespace__Output as _rookery_v1_Tablespace__Output } from './rookery/v1/Tablespace';
import type { WatchBackupRequest as _rookery_v1_WatchBackupRequest, WatchBackupRequest__Output as _rookery_v1_WatchBackupRequest__Output } from './rookery/v1/WatchBackupRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rookery: {
    v1: {
      Artifact: MessageTypeDefinition<_rookery_v1_Artifact, _rookery_v1_Artifact__Output>
      BackupList: MessageTypeDefinition<_rookery_v1_BackupList, _rookery_v1_BackupList__Output>
      BackupProgressUpdate: MessageTypeDefinition<_rookery_v1_BackupProgressUpdate, _rookery_v1_BackupProgressUpdate__Output>
      BackupRecord: MessageTypeDefinition<_rookery_v1_BackupRecord, _rookery_v1_BackupRecord__Output>
      BackupService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_BackupServiceClient> & { service: _rookery_v1_BackupServiceDefinition }
      CancelBackupRequest: MessageTypeDefinition<_rookery_v1_CancelBackupRequest, _rookery_v1_CancelBackupRequest__Output>
      Check: MessageTypeDefinition<_rookery_v1_Check, _rookery_v1_Check__Output>
      Compression: MessageTypeDefinition<_rookery_v1_Compression, _rookery_v1_Compression__Output>
      Encryption: MessageTypeDefinition<_rookery_v1_Encryption, _rookery_v1_Encryption__Output>
      GetBackupRequest: MessageTypeDefinition<_rookery_v1_GetBackupRequest, _rookery_v1_GetBackupRequest__Output>
      Hold: MessageTypeDefinition<_rookery_v1_Hold, _rookery_v1_Hold__Output>
      IncrementalPages: MessageTypeDefinition<_rookery_v1_IncrementalPages, _rookery_v1_IncrementalPages__Output>
      ListBackupsRequest: MessageTypeDefinition<_rookery_v1_ListBackupsRequest, _rookery_v1_ListBackupsRequest__Output>
      PageIndexDelta: MessageTypeDefinition<_rookery_v1_PageIndexDelta, _rookery_v1_PageIndexDelta__Output>
      Progress: MessageTypeDefinition<_rookery_v1_Progress, _rookery_v1_Progress__Output>
      RestoreRecord: MessageTypeDefinition<_rookery_v1_RestoreRecord, _rookery_v1_RestoreRecord__Output>
      StartBackupRequest: MessageTypeDefinition<_rookery_v1_StartBackupRequest, _rookery_v1_StartBackupRequest__Output>
      Tablespace: MessageTypeDefinition<_rookery_v1_Tablespace, _rookery_v1_Tablespace__Output>
      WatchBackupRequest: MessageTypeDefinition<_rookery_v1_WatchBackupRequest, _rookery_v1_WatchBackupRequest__Output>
    }
  }
}

