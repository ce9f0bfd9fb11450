// Original file: proto/rookery/v1/restore.proto

import type { LogicalTarget as _rookery_v1_LogicalTarget, LogicalTarget__Output as _rookery_v1_LogicalTarget__Output } from '../../rookery/v1/LogicalTarget';
import type { PhysicalTarget as _rookery_v1_PhysicalTarget, PhysicalTarget__Output as _rookery_v1_PhysicalTarget__Output } from '../../rookery/v1/PhysicalTarget';

export interface StartRestoreRequest {
  'backup'?: (string);
  'logical'?: (_rookery_v1_LogicalTarget | null);
  'physical'?: (_rookery_v1_PhysicalTarget | null);
  'target'?: "logical"|"physical";
}

export interface StartRestoreRequest__Output {
  'backup': (string);
  'logical'?: (_rookery_v1_LogicalTarget__Output | null);
  'physical'?: (_rookery_v1_PhysicalTarget__Output | null);
  'target'?: "logical"|"physical";
}
