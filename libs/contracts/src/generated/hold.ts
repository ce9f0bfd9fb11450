import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Artifact as _rookery_v1_Artifact, Artifact__Output as _rookery_v1_Artifact__Output } from './rookery/v1/Artifact';
import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from './rookery/v1/BackupRecord';
import type { Check as _rookery_v1_Check, Check__Output as _rookery_v1_Check__Output } from './rookery/v1/Check';
import type { Compression as _rookery_v1_Compression, Compression__Output as _rookery_v1_Compression__Output } from './rookery/v1/Compression';
import type { Encryption as _rookery_v1_Encryption, Encryption__Output as _rookery_v1_Encryption__Output } from './rookery/v1/Encryption';
import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from './rookery/v1/Hold';
import type { HoldList as _rookery_v1_HoldList, HoldList__Output as _rookery_v1_HoldList__Output } from './rookery/v1/HoldList';
import type { HoldServiceClient as _rookery_v1_HoldServiceClient, HoldServiceDefinition as _rookery_v1_HoldServiceDefinition } from './rookery/v1/HoldService';
import type { IncrementalPages as _rookery_v1_IncrementalPages, IncrementalPages__Output as _rookery_v1_IncrementalPages__Output } from './rookery/v1/IncrementalPages';
import type { ListHoldsRequest as _rookery_v1_ListHoldsRequest, ListHoldsRequest__Output as _rookery_v1_ListHoldsRequest__Output } from './rookery/v1/ListHoldsRequest';
import type { PageIndexDelta as _rookery_v1_PageIndexDelta, PageIndexDelta__Output as _rookery_v1_PageIndexDelta__Output } from './rookery/v1/PageIndexDelta';
import type { PlaceHoldRequest as _rookery_v1_PlaceHoldRequest, PlaceHoldRequest__Output as _rookery_v1_PlaceHoldRequest__Output } from './rookery/v1/PlaceHoldRequest';
import type { Progress as _rookery_v1_Progress, Progress__Output as _rookery_v1_Progress__Output } from './rookery/v1/Progress';
import type { ReleaseHoldRequest as _rookery_v1_ReleaseHoldRequest, ReleaseHoldRequest__Output as _rookery_v1_ReleaseHoldRequest__Output } from './rookery/v1/ReleaseHoldRequest';
import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from './rookery/v1/RestoreRecord';
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
      Encryption: MessageTypeDefinition<_rookery_v1_Encryption, _rookery_v1_Encryption__Output>
      Hold: MessageTypeDefinition<_rookery_v1_Hold, _rookery_v1_Hold__Output>
      HoldList: MessageTypeDefinition<_rookery_v1_HoldList, _rookery_v1_HoldList__Output>
      HoldService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_HoldServiceClient> & { service: _rookery_v1_HoldServiceDefinition }
      IncrementalPages: MessageTypeDefinition<_rookery_v1_IncrementalPages, _rookery_v1_IncrementalPages__Output>
      ListHoldsRequest: MessageTypeDefinition<_rookery_v1_ListHoldsRequest, _rookery_v1_ListHoldsRequest__Output>
      PageIndexDelta: MessageTypeDefinition<_rookery_v1_PageIndexDelta, _rookery_v1_PageIndexDelta__Output>
      PlaceHoldRequest: MessageTypeDefinition<_rookery_v1_PlaceHoldRequest, _rookery_v1_PlaceHoldRequest__Output>
      Progress: MessageTypeDefinition<_rookery_v1_Progress, _rookery_v1_Progress__Output>
      ReleaseHoldRequest: MessageTypeDefinition<_rookery_v1_ReleaseHoldRequest, _rookery_v1_ReleaseHoldRequest__Output>
      RestoreRecord: MessageTypeDefinition<_rookery_v1_RestoreRecord, _rookery_v1_RestoreRecord__Output>
      Tablespace: MessageTypeDefinition<_rookery_v1_Tablespace, _rookery_v1_Tablespace__Output>
    }
  }
}

