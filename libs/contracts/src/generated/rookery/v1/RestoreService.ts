// Original file: proto/rookery/v1/restore.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelRestoreRequest as _rookery_v1_CancelRestoreRequest, CancelRestoreRequest__Output as _rookery_v1_CancelRestoreRequest__Output } from '../../rookery/v1/CancelRestoreRequest';
import type { GetRestoreRequest as _rookery_v1_GetRestoreRequest, GetRestoreRequest__Output as _rookery_v1_GetRestoreRequest__Output } from '../../rookery/v1/GetRestoreRequest';
import type { ListRestoresRequest as _rookery_v1_ListRestoresRequest, ListRestoresRequest__Output as _rookery_v1_ListRestoresRequest__Output } from '../../rookery/v1/ListRestoresRequest';
import type { RestoreList as _rookery_v1_RestoreList, RestoreList__Output as _rookery_v1_RestoreList__Output } from '../../rookery/v1/RestoreList';
import type { RestoreProgressUpdate as _rookery_v1_RestoreProgressUpdate, RestoreProgressUpdate__Output as _rookery_v1_RestoreProgressUpdate__Output } from '../../rookery/v1/RestoreProgressUpdate';
import type { RestoreRecord as _rookery_v1_RestoreRecord, RestoreRecord__Output as _rookery_v1_RestoreRecord__Output } from '../../rookery/v1/RestoreRecord';
import type { StartRestoreRequest as _rookery_v1_StartRestoreRequest, StartRestoreRequest__Output as _rookery_v1_StartRestoreRequest__Output } from '../../rookery/v1/StartRestoreRequest';
import type { WatchRestoreRequest as _rookery_v1_WatchRestoreRequest, WatchRestoreRequest__Output as _rookery_v1_WatchRestoreRequest__Output } from '../../rookery/v1/WatchRestoreRequest';

export interface RestoreServiceClient extends grpc.Client {
  CancelRestore(argument: _rookery_v1_CancelRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  CancelRestore(argument: _rookery_v1_CancelRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  CancelRestore(argument: _rookery_v1_CancelRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  CancelRestore(argument: _rookery_v1_CancelRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  cancelRestore(argument: _rookery_v1_CancelRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  cancelRestore(argument: _rookery_v1_CancelRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  cancelRestore(argument: _rookery_v1_CancelRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  cancelRestore(argument: _rookery_v1_CancelRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  
  GetRestore(argument: _rookery_v1_GetRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  GetRestore(argument: _rookery_v1_GetRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  GetRestore(argument: _rookery_v1_GetRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  GetRestore(argument: _rookery_v1_GetRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  getRestore(argument: _rookery_v1_GetRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  getRestore(argument: _rookery_v1_GetRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  getRestore(argument: _rookery_v1_GetRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  getRestore(argument: _rookery_v1_GetRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  
  ListRestores(argument: _rookery_v1_ListRestoresRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  ListRestores(argument: _rookery_v1_ListRestoresRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  ListRestores(argument: _rookery_v1_ListRestoresRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  ListRestores(argument: _rookery_v1_ListRestoresRequest, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  listRestores(argument: _rookery_v1_ListRestoresRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  listRestores(argument: _rookery_v1_ListRestoresRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  listRestores(argument: _rookery_v1_ListRestoresRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  listRestores(argument: _rookery_v1_ListRestoresRequest, callback: grpc.requestCallback<_rookery_v1_RestoreList__Output>): grpc.ClientUnaryCall;
  
  StartRestore(argument: _rookery_v1_StartRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  StartRestore(argument: _rookery_v1_StartRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  StartRestore(argument: _rookery_v1_StartRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  StartRestore(argument: _rookery_v1_StartRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  startRestore(argument: _rookery_v1_StartRestoreRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  startRestore(argument: _rookery_v1_StartRestoreRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  startRestore(argument: _rookery_v1_StartRestoreRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  startRestore(argument: _rookery_v1_StartRestoreRequest, callback: grpc.requestCallback<_rookery_v1_RestoreRecord__Output>): grpc.ClientUnaryCall;
  
  WatchRestore(argument: _rookery_v1_WatchRestoreRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_RestoreProgressUpdate__Output>;
  WatchRestore(argument: _rookery_v1_WatchRestoreRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_RestoreProgressUpdate__Output>;
  watchRestore(argument: _rookery_v1_WatchRestoreRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_RestoreProgressUpdate__Output>;
  watchRestore(argument: _rookery_v1_WatchRestoreRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_RestoreProgressUpdate__Output>;
  
}

export interface RestoreServiceHandlers extends grpc.UntypedServiceImplementation {
  CancelRestore: grpc.handleUnaryCall<_rookery_v1_CancelRestoreRequest__Output, _rookery_v1_RestoreRecord>;
  
  GetRestore: grpc.handleUnaryCall<_rookery_v1_GetRestoreRequest__Output, _rookery_v1_RestoreRecord>;
  
  ListRestores: grpc.handleUnaryCall<_rookery_v1_ListRestoresRequest__Output, _rookery_v1_RestoreList>;
  
  StartRestore: grpc.handleUnaryCall<_rookery_v1_StartRestoreRequest__Output, _rookery_v1_RestoreRecord>;
  
  WatchRestore: grpc.handleServerStreamingCall<_rookery_v1_WatchRestoreRequest__Output, _rookery_v1_RestoreProgressUpdate>;
  
}

export interface RestoreServiceDefinition extends grpc.ServiceDefinition {
  CancelRestore: MethodDefinition<_rookery_v1_CancelRestoreRequest, _rookery_v1_RestoreRecord, _rookery_v1_CancelRestoreRequest__Output, _rookery_v1_RestoreRecord__Output>
  GetRestore: MethodDefinition<_rookery_v1_GetRestoreRequest, _rookery_v1_RestoreRecord, _rookery_v1_GetRestoreRequest__Output, _rookery_v1_RestoreRecord__Output>
  ListRestores: MethodDefinition<_rookery_v1_ListRestoresRequest, _rookery_v1_RestoreList, _rookery_v1_ListRestoresRequest__Output, _rookery_v1_RestoreList__Output>
  StartRestore: MethodDefinition<_rookery_v1_StartRestoreRequest, _rookery_v1_RestoreRecord, _rookery_v1_StartRestoreRequest__Output, _rookery_v1_RestoreRecord__Output>
  WatchRestore: MethodDefinition<_rookery_v1_WatchRestoreRequest, _rookery_v1_RestoreProgressUpdate, _rookery_v1_WatchRestoreRequest__Output, _rookery_v1_RestoreProgressUpdate__Output>
}
