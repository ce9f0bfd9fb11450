import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Artifact as _rookery_v1_Artifact, Artifact__Output as _rookery_v1_Artifact__Output } from './rookery/v1/Artifact';
import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from './rookery/v1/BackupRecord';
import type { CancelRestoreRequest as _rookery_v1_CancelRestoreRequest, CancelRestoreRequest__Output as _rookery_v1_CancelRestoreRequest__Output } from './rookery/v1/CancelRestoreRequest';
import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from './rookery/v1/Check';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from './rookery/v1/Compression';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from './rookery/v1/Encryption';
import type { GetRestoreRequest as _rookery_v1_GetRestoreRequest, GetRestoreRequest__Output as _rookery_v1_GetRestoreRequest__Output } from './rookery/v1/GetRestoreRequest';
import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from './rookery/v1/Hold';
import type { IncrementalPages as _rookery_v1_IncrementalPages, IncrementalPages__Output as _rookery_v1_IncrementalPages__Output } from './rookery/v1/IncrementalPages';
import type { ListRestoresRequest as _rookery_v1_ListRestoresRequest, ListRestoresRequest__Output as _rookery_v1_ListRestoresRequest__Output } from './rookery/v1/ListRestoresRequest';
import type { LogicalTarget as _rookery_v1_LogicalTarget, LogicalTarget__Output as _rookery_v1_LogicalTarget__Output } from './rookery/v1/LogicalTarget';
import type { PageIndexDelta as _rookery_v1_PageIndexDelta, PageIndexDelta__Output as _rookery_v1_PageIndexDelta__Output } from './rookery/v1/PageIndexDelta';
import type { PhysicalTarget as _rookery_v1_PhysicalTarget, PhysicalTarget__Output as _rookery_v1_PhysicalTarget__Output } from './rookery/v1/PhysicalTarget';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from './rookery/v1/Progress';
import type { RecoveryTarget as _rookery_v1_RecoveryTarget, RecoveryTarget__Output as _rookery_v1_RecoveryTarget__Output } from './rookery/v1/RecoveryTarget';
import type { RestoreList as _rookery_v1_RestoreList, RestoreList__Output as _rookery_v1_RestoreList__Output } from './rookery/v1/RestoreList';
import type { RestoreProgressUpdate as _rookery_v1_RestoreProgressUpdate, RestoreProgressUpdate__Output as _rookery_v1_RestoreProgressUpdate__Output } from './rookery/v1/RestoreProgressUpdate';
import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from './rookery/v1/RestoreRecord';
import type { RestoreServiceClient as _rookery_v1_RestoreServiceClient, RestoreServiceDefinition as _rookery_v1_RestoreServiceDefinition } from './rookery/v1/RestoreService';
import type { StartRestoreRequest as _rookery_v1_StartRestoreRequest, StartRestoreRequest__Output as _rookery_v1_StartRestoreRequest__Output } from './rookery/v1/StartRestoreRequest';
import type { Tablespace as _rookery_v1_Tablespace, Tablespace__Output as _rookery_v1_Tablespace__Output } from './rookery/v1/Tablespace';
import type { WatchRestoreRequest as _rookery_v1_WatchRestoreRequest, WatchRestoreRequest__Output as _rookery_v1_WatchRestoreRequest__Output } from './rookery/v1/WatchRestoreRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rookery: {
    v1: {
      Artifact: MessageTypeDefinition<_rookery_v1_Artifact, _rookery_v1_Artifact__Output>
      BackupRecord: MessageTypeDefinition<_rookery_v1_BackupRecord, _rookery_v1_BackupRecord__Output>
      CancelRestoreRequest: MessageTypeDefinition<_rookery_v1_CancelRestoreRequest, _rookery_v1_CancelRestoreRequest__Output>
      Check: MessageTypeDefinition<_rookery_v1_Check, _rookery_v1_Check__Output>
      Compression: MessageTypeDefinition<_rookery_v1_Compression, _rookery_v1_Compression__Output>
      Encryption: MessageTypeDefinition<_rookery_v1_Encryption, _rookery_v1_Encryption__Output>
      GetRestoreRequest: MessageTypeDefinition<_rookery_v1_GetRestoreRequest, _rookery_v1_GetRestoreRequest__Output>
      Hold: MessageTypeDefinition<_rookery_v1_Hold, _rookery_v1_Hold__Output>
      IncrementalPages: MessageTypeDefinition<_rookery_v1_IncrementalPages, _rookery_v1_IncrementalPages__Output>
      ListRestoresRequest: MessageTypeDefinition<_rookery_v1_ListRestoresRequest, _rookery_v1_ListRestoresRequest__Output>
      LogicalTarget: MessageTypeDefinition<_rookery_v1_LogicalTarget, _rookery_v1_LogicalTarget__Output>
      PageIndexDelta: MessageTypeDefinition<_rookery_v1_PageIndexDelta, _rookery_v1_PageIndexDelta__Output>
      PhysicalTarget: MessageTypeDefinition<_rookery_v1_PhysicalTarget, _rookery_v1_PhysicalTarget__Output>
      Progress: MessageTypeDefinition<_rookery_v1_Progress, _rookery_v1_Progress__Output>
      RecoveryTarget: MessageTypeDefinition<_rookery_v1_RecoveryTarget, _rookery_v1_RecoveryTarget__Output>
      RestoreList: MessageTypeDefinition<_rookery_v1_RestoreList, _rookery_v1_RestoreList__Output>
      RestoreProgressUpdate: MessageTypeDefinition<_rookery_v1_RestoreProgressUpdate, _rookery_v1_RestoreProgressUpdate__Output>
      RestoreRecord: MessageTypeDefinition<_rookery_v1_RestoreRecord, _rookery_v1_RestoreRecord__Output>
      RestoreService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_RestoreServiceClient> & { service: _rookery_v1_RestoreServiceDefinition }
      StartRestoreRequest: MessageTypeDefinition<_rookery_v1_StartRestoreRequest, _rookery_v1_StartRestoreRequest__Output>
      Tablespace: MessageTypeDefinition<_rookery_v1_Tablespace, _rookery_v1_Tablespace__Output>
      WatchRestoreRequest: MessageTypeDefinition<_rookery_v1_WatchRestoreRequest, _rookery_v1_WatchRestoreRequest__Output>
    }
  }
}

