// Original file: proto/rookery/v1/drill.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DrillList as _rookery_v1_DrillList, DrillList__Output as _rookery_v1_DrillList__Output } from '../../rookery/v1/DrillList';
import type { DrillReport as _rookery_v1_DrillReport, DrillReport__Output as _rookery_v1_DrillReport__Output } from '../../rookery/v1/DrillReport';
import type { ListDrillsRequest as _rookery_v1_ListDrillsRequest, ListDrillsRequest__Output as _rookery_v1_ListDrillsRequest__Output } from '../../rookery/v1/ListDrillsRequest';
import type { StartDrillRequest as _rookery_v1_StartDrillRequest, StartDrillRequest__Output as _rookery_v1_StartDrillRequest__Output } from '../../rookery/v1/StartDrillRequest';

export interface DrillServiceClient extends grpc.Client {
  ListDrills(argument: _rookery_v1_ListDrillsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  ListDrills(argument: _rookery_v1_ListDrillsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  ListDrills(argument: _rookery_v1_ListDrillsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  ListDrills(argument: _rookery_v1_ListDrillsRequest, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  listDrills(argument: _rookery_v1_ListDrillsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  listDrills(argument: _rookery_v1_ListDrillsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  listDrills(argument: _rookery_v1_ListDrillsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  listDrills(argument: _rookery_v1_ListDrillsRequest, callback: grpc.requestCallback<_rookery_v1_DrillList__Output>): grpc.ClientUnaryCall;
  
  StartDrill(argument: _rookery_v1_StartDrillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  StartDrill(argument: _rookery_v1_StartDrillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  StartDrill(argument: _rookery_v1_StartDrillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  StartDrill(argument: _rookery_v1_StartDrillRequest, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  startDrill(argument: _rookery_v1_StartDrillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  startDrill(argument: _rookery_v1_StartDrillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  startDrill(argument: _rookery_v1_StartDrillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  startDrill(argument: _rookery_v1_StartDrillRequest, callback: grpc.requestCallback<_rookery_v1_DrillReport__Output>): grpc.ClientUnaryCall;
  
}

export interface DrillServiceHandlers extends grpc.UntypedServiceImplementation {
  ListDrills: grpc.handleUnaryCall<_rookery_v1_ListDrillsRequest__Output, _rookery_v1_DrillList>;
  
  StartDrill: grpc.handleUnaryCall<_rookery_v1_StartDrillRequest__Output, _rookery_v1_DrillReport>;
  
}

export interface DrillServiceDefinition extends grpc.ServiceDefinition {
  ListDrills: MethodDefinition<_rookery_v1_ListDrillsRequest, _rookery_v1_DrillList, _rookery_v1_ListDrillsRequest__Output, _rookery_v1_DrillList__Output>
  StartDrill: MethodDefinition<_rookery_v1_StartDrillRequest, _rookery_v1_DrillReport, _rookery_v1_StartDrillRequest__Output, _rookery_v1_DrillReport__Output>
}
