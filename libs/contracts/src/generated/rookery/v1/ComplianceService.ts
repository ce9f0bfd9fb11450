// Original file: proto/rookery/v1/compliance.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetReportRequest as _rookery_v1_GetReportRequest, GetReportRequest__Output as _rookery_v1_GetReportRequest__Output } from '../../rookery/v1/GetReportRequest';
import type { GetTierComplianceRequest as _rookery_v1_GetTierComplianceRequest, GetTierComplianceRequest__Output as _rookery_v1_GetTierComplianceRequest__Output } from '../../rookery/v1/GetTierComplianceRequest';
import type { Report as _rookery_v1_Report, Report__Output as _rookery_v1_Report__Output } from '../../rookery/v1/Report';
import type { TierCompliance as _rookery_v1_TierCompliance, TierCompliance__Output as _rookery_v1_TierCompliance__Output } from '../../rookery/v1/TierCompliance';

export interface ComplianceServiceClient extends grpc.Client {
  GetReport(argument: _rookery_v1_GetReportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  GetReport(argument: _rookery_v1_GetReportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  GetReport(argument: _rookery_v1_GetReportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  GetReport(argument: _rookery_v1_GetReportRequest, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  getReport(argument: _rookery_v1_GetReportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  getReport(argument: _rookery_v1_GetReportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  getReport(argument: _rookery_v1_GetReportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  getReport(argument: _rookery_v1_GetReportRequest, callback: grpc.requestCallback<_rookery_v1_Report__Output>): grpc.ClientUnaryCall;
  
  GetTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  GetTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  GetTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  GetTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  getTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  getTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  getTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  getTierCompliance(argument: _rookery_v1_GetTierComplianceRequest, callback: grpc.requestCallback<_rookery_v1_TierCompliance__Output>): grpc.ClientUnaryCall;
  
}

export interface ComplianceServiceHandlers extends grpc.UntypedServiceImplementation {
  GetReport: grpc.handleUnaryCall<_rookery_v1_GetReportRequest__Output, _rookery_v1_Report>;
  
  GetTierCompliance: grpc.handleUnaryCall<_rookery_v1_GetTierComplianceRequest__Output, _rookery_v1_TierCompliance>;
  
}

export interface ComplianceServiceDefinition extends grpc.ServiceDefinition {
  GetReport: MethodDefinition<_rookery_v1_GetReportRequest, _rookery_v1_Report, _rookery_v1_GetReportRequest__Output, _rookery_v1_Report__Output>
  GetTierCompliance: MethodDefinition<_rookery_v1_GetTierComplianceRequest, _rookery_v1_TierCompliance, _rookery_v1_GetTierComplianceRequest__Output, _rookery_v1_TierCompliance__Output>
}
