// Original file: proto/rookery/v1/compliance.proto

import type { Objectives as _rookery_v1_Objectives, Objectives__Output as _rookery_v1_Objectives__Output } from '../../rookery/v1/Objectives';
import type { LastGoodFull as _rookery_v1_LastGoodFull, LastGoodFull__Output as _rookery_v1_LastGoodFull__Output } from '../../rookery/v1/LastGoodFull';
import type { RecoveryPoint as _rookery_v1_RecoveryPoint, RecoveryPoint__Output as _rookery_v1_RecoveryPoint__Output } from '../../rookery/v1/RecoveryPoint';
import type { StreamState as _rookery_v1_StreamState, StreamState__Output as _rookery_v1_StreamState__Output } from '../../rookery/v1/StreamState';
import type { DrillPoint as _rookery_v1_DrillPoint, DrillPoint__Output as _rookery_v1_DrillPoint__Output } from '../../rookery/v1/DrillPoint';
import type { ValidationPoint as _rookery_v1_ValidationPoint, ValidationPoint__Output as _rookery_v1_ValidationPoint__Output } from '../../rookery/v1/ValidationPoint';
import type { ValidationSummary as _rookery_v1_ValidationSummary, ValidationSummary__Output as _rookery_v1_ValidationSummary__Output } from '../../rookery/v1/ValidationSummary';
import type { RetentionAdherence as _rookery_v1_RetentionAdherence, RetentionAdherence__Output as _rookery_v1_RetentionAdherence__Output } from '../../rookery/v1/RetentionAdherence';
import type { ReplicationSummary as _rookery_v1_ReplicationSummary, ReplicationSummary__Output as _rookery_v1_ReplicationSummary__Output } from '../../rookery/v1/ReplicationSummary';
import type { LintFinding as _rookery_v1_LintFinding, LintFinding__Output as _rookery_v1_LintFinding__Output } from '../../rookery/v1/LintFinding';
import type { ComplianceSeries as _rookery_v1_ComplianceSeries, ComplianceSeries__Output as _rookery_v1_ComplianceSeries__Output } from '../../rookery/v1/ComplianceSeries';

export interface TierCompliance {
  'tier'?: (string);
  'generatedAt'?: (string);
  'objectives'?: (_rookery_v1_Objectives | null);
  'lastGoodFull'?: (_rookery_v1_LastGoodFull | null);
  'recoveryPoint'?: (_rookery_v1_RecoveryPoint | null);
  'stream'?: (_rookery_v1_StreamState | null);
  'rpoExposureSeconds'?: (number | string);
  'rpoMet'?: (boolean);
  'lastDrill'?: (_rookery_v1_DrillPoint | null);
  'lastValidation'?: (_rookery_v1_ValidationPoint | null);
  'missing'?: (string)[];
  'validation'?: (_rookery_v1_ValidationSummary | null);
  'retention'?: (_rookery_v1_RetentionAdherence | null);
  'replication'?: (_rookery_v1_ReplicationSummary | null);
  'lint'?: (_rookery_v1_LintFinding)[];
  'status'?: (string);
  'series'?: (_rookery_v1_ComplianceSeries | null);
  '_rpoExposureSeconds'?: "rpoExposureSeconds";
  '_rpoMet'?: "rpoMet";
}

export interface TierCompliance__Output {
  'tier': (string);
  'generatedAt': (string);
  'objectives': (_rookery_v1_Objectives__Output | null);
  'lastGoodFull': (_rookery_v1_LastGoodFull__Output | null);
  'recoveryPoint': (_rookery_v1_RecoveryPoint__Output | null);
  'stream': (_rookery_v1_StreamState__Output | null);
  'rpoExposureSeconds'?: (number);
  'rpoMet'?: (boolean);
  'lastDrill': (_rookery_v1_DrillPoint__Output | null);
  'lastValidation': (_rookery_v1_ValidationPoint__Output | null);
  'missing': (string)[];
  'validation': (_rookery_v1_ValidationSummary__Output | null);
  'retention': (_rookery_v1_RetentionAdherence__Output | null);
  'replication': (_rookery_v1_ReplicationSummary__Output | null);
  'lint': (_rookery_v1_LintFinding__Output)[];
  'status': (string);
  'series': (_rookery_v1_ComplianceSeries__Output | null);
  '_rpoExposureSeconds'?: "rpoExposureSeconds";
  '_rpoMet'?: "rpoMet";
}
