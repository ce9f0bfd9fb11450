// Original file: proto/rookery/v1/retention.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { PlanRetentionRequest as _rookery_v1_PlanRetentionRequest, PlanRetentionRequest__Output as _rookery_v1_PlanRetentionRequest__Output } from '../../rookery/v1/PlanRetentionRequest';
import type { RetentionPlanResult as _rookery_v1_RetentionPlanResult, RetentionPlanResult__Output as _rookery_v1_RetentionPlanResult__Output } from '../../rookery/v1/RetentionPlanResult';

export interface RetentionServiceClient extends grpc.Client {
  PlanRetention(argument: _rookery_v1_PlanRetentionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  PlanRetention(argument: _rookery_v1_PlanRetentionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  PlanRetention(argument: _rookery_v1_PlanRetentionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  PlanRetention(argument: _rookery_v1_PlanRetentionRequest, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  planRetention(argument: _rookery_v1_PlanRetentionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  planRetention(argument: _rookery_v1_PlanRetentionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  planRetention(argument: _rookery_v1_PlanRetentionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  planRetention(argument: _rookery_v1_PlanRetentionRequest, callback: grpc.requestCallback<_rookery_v1_RetentionPlanResult__Output>): grpc.ClientUnaryCall;
  
}

export interface RetentionServiceHandlers extends grpc.UntypedServiceImplementation {
  PlanRetention: grpc.handleUnaryCall<_rookery_v1_PlanRetentionRequest__Output, _rookery_v1_RetentionPlanResult>;
  
}

export interface RetentionServiceDefinition extends grpc.ServiceDefinition {
  PlanRetention: MethodDefinition<_rookery_v1_PlanRetentionRequest, _rookery_v1_RetentionPlanResult, _rookery_v1_PlanRetentionRequest__Output, _rookery_v1_RetentionPlanResult__Output>
}
