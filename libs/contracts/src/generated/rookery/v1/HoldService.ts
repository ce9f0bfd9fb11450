// Original file: proto/rookery/v1/hold.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from '../../rookery/v1/Hold';
import type { HoldList as _rookery_v1_HoldList, HoldList__Output as _rookery_v1_HoldList__Output } from '../../rookery/v1/HoldList';
import type { ListHoldsRequest as _rookery_v1_ListHoldsRequest, ListHoldsRequest__Output as _rookery_v1_ListHoldsRequest__Output } from '../../rookery/v1/ListHoldsRequest';
import type { PlaceHoldRequest as _rookery_v1_PlaceHoldRequest, PlaceHoldRequest__Output as _rookery_v1_PlaceHoldRequest__Output } from '../../rookery/v1/PlaceHoldRequest';
import type { ReleaseHoldRequest as _rookery_v1_ReleaseHoldRequest, ReleaseHoldRequest__Output as _rookery_v1_ReleaseHoldRequest__Output } from '../../rookery/v1/ReleaseHoldRequest';

export interface HoldServiceClient extends grpc.Client {
  ListHolds(argument: _rookery_v1_ListHoldsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  ListHolds(argument: _rookery_v1_ListHoldsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  ListHolds(argument: _rookery_v1_ListHoldsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  ListHolds(argument: _rookery_v1_ListHoldsRequest, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  listHolds(argument: _rookery_v1_ListHoldsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  listHolds(argument: _rookery_v1_ListHoldsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  listHolds(argument: _rookery_v1_ListHoldsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  listHolds(argument: _rookery_v1_ListHoldsRequest, callback: grpc.requestCallback<_rookery_v1_HoldList__Output>): grpc.ClientUnaryCall;
  
  PlaceHold(argument: _rookery_v1_PlaceHoldRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  PlaceHold(argument: _rookery_v1_PlaceHoldRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  PlaceHold(argument: _rookery_v1_PlaceHoldRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  PlaceHold(argument: _rookery_v1_PlaceHoldRequest, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  placeHold(argument: _rookery_v1_PlaceHoldRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  placeHold(argument: _rookery_v1_PlaceHoldRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  placeHold(argument: _rookery_v1_PlaceHoldRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  placeHold(argument: _rookery_v1_PlaceHoldRequest, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  
  ReleaseHold(argument: _rookery_v1_ReleaseHoldRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  ReleaseHold(argument: _rookery_v1_ReleaseHoldRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  ReleaseHold(argument: _rookery_v1_ReleaseHoldRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  ReleaseHold(argument: _rookery_v1_ReleaseHoldRequest, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  releaseHold(argument: _rookery_v1_ReleaseHoldRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  releaseHold(argument: _rookery_v1_ReleaseHoldRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  releaseHold(argument: _rookery_v1_ReleaseHoldRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  releaseHold(argument: _rookery_v1_ReleaseHoldRequest, callback: grpc.requestCallback<_rookery_v1_Hold__Output>): grpc.ClientUnaryCall;
  
}

export interface HoldServiceHandlers extends grpc.UntypedServiceImplementation {
  ListHolds: grpc.handleUnaryCall<_rookery_v1_ListHoldsRequest__Output, _rookery_v1_HoldList>;
  
  PlaceHold: grpc.handleUnaryCall<_rookery_v1_PlaceHoldRequest__Output, _rookery_v1_Hold>;
  
  ReleaseHold: grpc.handleUnaryCall<_rookery_v1_ReleaseHoldRequest__Output, _rookery_v1_Hold>;
  
}

export interface HoldServiceDefinition extends grpc.ServiceDefinition {
  ListHolds: MethodDefinition<_rookery_v1_ListHoldsRequest, _rookery_v1_HoldList, _rookery_v1_ListHoldsRequest__Output, _rookery_v1_HoldList__Output>
  PlaceHold: MethodDefinition<_rookery_v1_PlaceHoldRequest, _rookery_v1_Hold, _rookery_v1_PlaceHoldRequest__Output, _rookery_v1_Hold__Output>
  ReleaseHold: MethodDefinition<_rookery_v1_ReleaseHoldRequest, _rookery_v1_Hold, _rookery_v1_ReleaseHoldRequest__Output, _rookery_v1_Hold__Output>
}
