import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { BackupPoint as _rookery_v1_BackupPoint, BackupPoint__Output as _rookery_v1_BackupPoint__Output } from './rookery/v1/BackupPoint';
import type { ComplianceSeries as _rookery_v1_ComplianceSeries, ComplianceSeries__Output as _rookery_v1_ComplianceSeries__Output } from './rookery/v1/ComplianceSeries';
import type { ComplianceServiceClient as _rookery_v1_ComplianceServiceClient, ComplianceServiceDefinition as _rookery_v1_ComplianceServiceDefinition } from './rookery/v1/ComplianceService';
import type { DrillPoint as _rookery_v1_DrillPoint, DrillPoint__Output as _rookery_v1_DrillPoint__Output } from './rookery/v1/DrillPoint';
import type { ExpiredEarly as _rookery_v1_ExpiredEarly, ExpiredEarly__Output as _rookery_v1_ExpiredEarly__Output } from './rookery/v1/ExpiredEarly';
import type { ExposurePoint as _rookery_v1_ExposurePoint, ExposurePoint__Output as _rookery_v1_ExposurePoint__Output } from './rookery/v1/ExposurePoint';
import type { GetReportRequest as _rookery_v1_GetReportRequest, GetReportRequest__Output as _rookery_v1_GetReportRequest__Output } from './rookery/v1/GetReportRequest';
import type { GetTierComplianceRequest as _rookery_v1_GetTierComplianceRequest, GetTierComplianceRequest__Output as _rookery_v1_GetTierComplianceRequest__Output } from './rookery/v1/GetTierComplianceRequest';
import type { KeptPastPolicy as _rookery_v1_KeptPastPolicy, KeptPastPolicy__Output as _rookery_v1_KeptPastPolicy__Output } from './rookery/v1/KeptPastPolicy';
import type { LastGoodFull as _rookery_v1_LastGoodFull, LastGoodFull__Output as _rookery_v1_LastGoodFull__Output } from './rookery/v1/LastGoodFull';
import type { LintFinding as _rookery_v1_LintFinding, LintFinding__Output as _rookery_v1_LintFinding__Output } from './rookery/v1/LintFinding';
import type { Objectives as _rookery_v1_Objectives, Objectives__Output as _rookery_v1_Objectives__Output } from './rookery/v1/Objectives';
import type { RecoveryPoint as _rookery_v1_RecoveryPoint, RecoveryPoint__Output as _rookery_v1_RecoveryPoint__Output } from './rookery/v1/RecoveryPoint';
import type { ReplicationSummary as _rookery_v1_ReplicationSummary, ReplicationSummary__Output as _rookery_v1_ReplicationSummary__Output } from './rookery/v1/ReplicationSummary';
import type { Report as _rookery_v1_Report, Report__Output as _rookery_v1_Report__Output } from './rookery/v1/Report';
import type { RetentionAdherence as _rookery_v1_RetentionAdherence, RetentionAdherence__Output as _rookery_v1_RetentionAdherence__Output } from './rookery/v1/RetentionAdherence';
import type { StreamState as _rookery_v1_StreamState, StreamState__Output as _rookery_v1_StreamState__Output } from './rookery/v1/StreamState';
import type { TierCompliance as _rookery_v1_TierCompliance, TierCompliance__Output as _rookery_v1_TierCompliance__Output } from './rookery/v1/TierCompliance';
import type { ValidationPoint as _rookery_v1_ValidationPoint, ValidationPoint__Output as _rookery_v1_ValidationPoint__Output } from './rookery/v1/ValidationPoint';
import type { ValidationSummary as _rookery_v1_ValidationSummary, ValidationSummary__Output as _rookery_v1_ValidationSummary__Output } from './rookery/v1/ValidationSummary';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rookery: {
    v1: {
      BackupPoint: MessageTypeDefinition<_rookery_v1_BackupPoint, _rookery_v1_BackupPoint__Output>
      ComplianceSeries: MessageTypeDefinition<_rookery_v1_ComplianceSeries, _rookery_v1_ComplianceSeries__Output>
      ComplianceService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_ComplianceServiceClient> & { service: _rookery_v1_ComplianceServiceDefinition }
      DrillPoint: MessageTypeDefinition<_rookery_v1_DrillPoint, _rookery_v1_DrillPoint__Output>
      ExpiredEarly: MessageTypeDefinition<_rookery_v1_ExpiredEarly, _rookery_v1_ExpiredEarly__Output>
      ExposurePoint: MessageTypeDefinition<_rookery_v1_ExposurePoint, _rookery_v1_ExposurePoint__Output>
      GetReportRequest: MessageTypeDefinition<_rookery_v1_GetReportRequest, _rookery_v1_GetReportRequest__Output>
      GetTierComplianceRequest: MessageTypeDefinition<_rookery_v1_GetTierComplianceRequest, _rookery_v1_GetTierComplianceRequest__Output>
      KeptPastPolicy: MessageTypeDefinition<_rookery_v1_KeptPastPolicy, _rookery_v1_KeptPastPolicy__Output>
      LastGoodFull: MessageTypeDefinition<_rookery_v1_LastGoodFull, _rookery_v1_LastGoodFull__Output>
      LintFinding: MessageTypeDefinition<_rookery_v1_LintFinding, _rookery_v1_LintFinding__Output>
      Objectives: MessageTypeDefinition<_rookery_v1_Objectives, _rookery_v1_Objectives__Output>
      RecoveryPoint: MessageTypeDefinition<_rookery_v1_RecoveryPoint, _rookery_v1_RecoveryPoint__Output>
      ReplicationSummary: MessageTypeDefinition<_rookery_v1_ReplicationSummary, _rookery_v1_ReplicationSummary__Output>
      Report: MessageTypeDefinition<_rookery_v1_Report, _rookery_v1_Report__Output>
      RetentionAdherence: MessageTypeDefinition<_rookery_v1_RetentionAdherence, _rookery_v1_RetentionAdherence__Output>
      StreamState: MessageTypeDefinition<_rookery_v1_StreamState, _rookery_v1_StreamState__Output>
      TierCompliance: MessageTypeDefinition<_rookery_v1_TierCompliance, _rookery_v1_TierCompliance__Output>
      ValidationPoint: MessageTypeDefinition<_rookery_v1_ValidationPoint, _rookery_v1_ValidationPoint__Output>
      ValidationSummary: MessageTypeDefinition<_rookery_v1_ValidationSummary, _rookery_v1_ValidationSummary__Output>
    }
  }
}

