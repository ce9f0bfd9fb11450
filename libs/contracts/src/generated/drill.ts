import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Artifact as _rookery_v1_Artifact, Artifact__Output as _rookery_v1_Artifact__Output } from './rookery/v1/Artifact';
import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from './rookery/v1/BackupRecord';
import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from './rookery/v1/Check';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from './rookery/v1/Compression';
import type { DrillFailure as _rookery_v1_DrillFailure, DrillFailure__Output as _rookery_v1_DrillFailure__Output } from './rookery/v1/DrillFailure';
import type { DrillList as _rookery_v1_DrillList, DrillList__Output as _rookery_v1_DrillList__Output } from './rookery/v1/DrillList';
import type { DrillRecord as _rookery_v1_DrillRecord, DrillRecord__Output as _rookery_v1_DrillRecord__Output } from './rookery/v1/DrillRecord';
import type { DrillReport as _rookery_v1_DrillReport, DrillReport__Output as _rookery_v1_DrillReport__Output } from './rookery/v1/DrillReport';
import type { DrillServiceClient as _rookery_v1_DrillServiceClient, DrillServiceDefinition as _rookery_v1_DrillServiceDefinition } from './rookery/v1/DrillService';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from './rookery/v1/Encryption';
import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from './rookery/v1/Hold';
import type { IncrementalPages as _rookery_v1_IncrementalPages, IncrementalPages__Output as _rookery_v1_IncrementalPages__Output } from './rookery/v1/IncrementalPages';
import type { ListDrillsRequest as _rookery_v1_ListDrillsRequest, ListDrillsRequest__Output as _rookery_v1_ListDrillsRequest__Output } from './rookery/v1/ListDrillsRequest';
import type { PageIndexDelta as _rookery_v1_PageIndexDelta, PageIndexDelta__Output as _rookery_v1_PageIndexDelta__Output } from './rookery/v1/PageIndexDelta';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from './rookery/v1/Progress';
import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from './rookery/v1/RestoreRecord';
import type { StartDrillRequest as _rookery_v1_StartDrillRequest, StartDrillRequest__Output as _rookery_v1_StartDrillRequest__Output } from './rookery/v1/StartDrillRequest';
import type { Tablespace as _rookery_v1_Tablespace, Tablespace__Output as _rookery_v1_Tablespace__Output } from './rookery/v1/Tablespace';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rookery: {
    v1: {
      Artifact: MessageTypeDefinition<_rookery_v1_Artifact, _rookery_v1_Artifact__Output>
      BackupRecord: MessageTypeDefinition<_rookery_v1_BackupRecord, _rookery_v1_BackupRecord__Output>
      Check: MessageTypeDefinition<_rookery_v1_Check, _rookery_v1_Check__Output>
      Compression: MessageTypeDefinition<_rookery_v1_Compression, _rookery_v1_Compression__Output>
      DrillFailure: MessageTypeDefinition<_rookery_v1_DrillFailure, _rookery_v1_DrillFailure__Output>
      DrillList: MessageTypeDefinition<_rookery_v1_DrillList, _rookery_v1_DrillList__Output>
      DrillRecord: MessageTypeDefinition<_rookery_v1_DrillRecord, _rookery_v1_DrillRecord__Output>
      DrillReport: MessageTypeDefinition<_rookery_v1_DrillReport, _rookery_v1_DrillReport__Output>
      DrillService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_DrillServiceClient> & { service: _rookery_v1_DrillServiceDefinition }
      Encryption: MessageTypeDefinition<_rookery_v1_Encryption, _rookery_v1_Encryption__Output>
      Hold: MessageTypeDefinition<_rookery_v1_Hold, _rookery_v1_Hold__Output>
      IncrementalPages: MessageTypeDefinition<_rookery_v1_IncrementalPages, _rookery_v1_IncrementalPages__Output>
      ListDrillsRequest: MessageTypeDefinition<_rookery_v1_ListDrillsRequest, _rookery_v1_ListDrillsRequest__Output>
      PageIndexDelta: MessageTypeDefinition<_rookery_v1_PageIndexDelta, _rookery_v1_PageIndexDelta__Output>
      Progress: MessageTypeDefinition<_rookery_v1_Progress, _rookery_v1_Progress__Output>
      RestoreRecord: MessageTypeDefinition<_rookery_v1_RestoreRecord, _rookery_v1_RestoreRecord__Output>
      StartDrillRequest: MessageTypeDefinition<_rookery_v1_StartDrillRequest, _rookery_v1_StartDrillRequest__Output>
      Tablespace: MessageTypeDefinition<_rookery_v1_Tablespace, _rookery_v1_Tablespace__Output>
    }
  }
}

