// Original file: proto/rookery/v1/backup.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BackupList as _rookery_v1_BackupList, BackupList__Output as _rookery_v1_BackupList__Output } from '../../rookery/v1/BackupList';
import type { BackupProgressUpdate as _rookery_v1_BackupProgressUpdate, BackupProgressUpdate__Output as _rookery_v1_BackupProgressUpdate__Output } from '../../rookery/v1/BackupProgressUpdate';
import type { BackupRecord as _rookery_v1_BackupRecord, BackupRecord__Output as _rookery_v1_BackupRecord__Output } from '../../rookery/v1/BackupRecord';
import type { CancelBackupRequest as _rookery_v1_CancelBackupRequest, CancelBackupRequest__Output as _rookery_v1_CancelBackupRequest__Output } from '../../rookery/v1/CancelBackupRequest';
import type { GetBackupRequest as _rookery_v1_GetBackupRequest, GetBackupRequest__Output as _rookery_v1_GetBackupRequest__Output } from '../../rookery/v1/GetBackupRequest';
import type { ListBackupsRequest as _rookery_v1_ListBackupsRequest, ListBackupsRequest__Output as _rookery_v1_ListBackupsRequest__Output } from '../../rookery/v1/ListBackupsRequest';
import type { StartBackupRequest as _rookery_v1_StartBackupRequest, StartBackupRequest__Output as _rookery_v1_StartBackupRequest__Output } from '../../rookery/v1/StartBackupRequest';
import type { WatchBackupRequest as _rookery_v1_WatchBackupRequest, WatchBackupRequest__Output as _rookery_v1_WatchBackupRequest__Output } from '../../rookery/v1/WatchBackupRequest';

export interface BackupServiceClient extends grpc.Client {
  CancelBackup(argument: _rookery_v1_CancelBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  CancelBackup(argument: _rookery_v1_CancelBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  CancelBackup(argument: _rookery_v1_CancelBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  CancelBackup(argument: _rookery_v1_CancelBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  cancelBackup(argument: _rookery_v1_CancelBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  cancelBackup(argument: _rookery_v1_CancelBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  cancelBackup(argument: _rookery_v1_CancelBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  cancelBackup(argument: _rookery_v1_CancelBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  
  GetBackup(argument: _rookery_v1_GetBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  GetBackup(argument: _rookery_v1_GetBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  GetBackup(argument: _rookery_v1_GetBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  GetBackup(argument: _rookery_v1_GetBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  getBackup(argument: _rookery_v1_GetBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  getBackup(argument: _rookery_v1_GetBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  getBackup(argument: _rookery_v1_GetBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  getBackup(argument: _rookery_v1_GetBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  
  ListBackups(argument: _rookery_v1_ListBackupsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  ListBackups(argument: _rookery_v1_ListBackupsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  ListBackups(argument: _rookery_v1_ListBackupsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  ListBackups(argument: _rookery_v1_ListBackupsRequest, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  listBackups(argument: _rookery_v1_ListBackupsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  listBackups(argument: _rookery_v1_ListBackupsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  listBackups(argument: _rookery_v1_ListBackupsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  listBackups(argument: _rookery_v1_ListBackupsRequest, callback: grpc.requestCallback<_rookery_v1_BackupList__Output>): grpc.ClientUnaryCall;
  
  StartBackup(argument: _rookery_v1_StartBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  StartBackup(argument: _rookery_v1_StartBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  StartBackup(argument: _rookery_v1_StartBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  StartBackup(argument: _rookery_v1_StartBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  startBackup(argument: _rookery_v1_StartBackupRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  startBackup(argument: _rookery_v1_StartBackupRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  startBackup(argument: _rookery_v1_StartBackupRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  startBackup(argument: _rookery_v1_StartBackupRequest, callback: grpc.requestCallback<_rookery_v1_BackupRecord__Output>): grpc.ClientUnaryCall;
  
  WatchBackup(argument: _rookery_v1_WatchBackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_BackupProgressUpdate__Output>;
  WatchBackup(argument: _rookery_v1_WatchBackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_BackupProgressUpdate__Output>;
  watchBackup(argument: _rookery_v1_WatchBackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_BackupProgressUpdate__Output>;
  watchBackup(argument: _rookery_v1_WatchBackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_rookery_v1_BackupProgressUpdate__Output>;
  
}

export interface BackupServiceHandlers extends grpc.UntypedServiceImplementation {
  CancelBackup: grpc.handleUnaryCall<_rookery_v1_CancelBackupRequest__Output, _rookery_v1_BackupRecord>;
  
  GetBackup: grpc.handleUnaryCall<_rookery_v1_GetBackupRequest__Output, _rookery_v1_BackupRecord>;
  
  ListBackups: grpc.handleUnaryCall<_rookery_v1_ListBackupsRequest__Output, _rookery_v1_BackupList>;
  
  StartBackup: grpc.handleUnaryCall<_rookery_v1_StartBackupRequest__Output, _rookery_v1_BackupRecord>;
  
  WatchBackup: grpc.handleServerStreamingCall<_rookery_v1_WatchBackupRequest__Output, _rookery_v1_BackupProgressUpdate>;
  
}

export interface BackupServiceDefinition extends grpc.ServiceDefinition {
  CancelBackup: MethodDefinition<_rookery_v1_CancelBackupRequest, _rookery_v1_BackupRecord, _rookery_v1_CancelBackupRequest__Output, _rookery_v1_BackupRecord__Output>
  GetBackup: MethodDefinition<_rookery_v1_GetBackupRequest, _rookery_v1_BackupRecord, _rookery_v1_GetBackupRequest__Output, _rookery_v1_BackupRecord__Output>
  ListBackups: MethodDefinition<_rookery_v1_ListBackupsRequest, _rookery_v1_BackupList, _rookery_v1_ListBackupsRequest__Output, _rookery_v1_BackupList__Output>
  StartBackup: MethodDefinition<_rookery_v1_StartBackupRequest, _rookery_v1_BackupRecord, _rookery_v1_StartBackupRequest__Output, _rookery_v1_BackupRecord__Output>
  WatchBackup: MethodDefinition<_rookery_v1_WatchBackupRequest, _rookery_v1_BackupProgressUpdate, _rookery_v1_WatchBackupRequest__Output, _rookery_v1_BackupProgressUpdate__Output>
}
