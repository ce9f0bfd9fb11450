// Original file: proto/rookery/v1/restore.proto

import type { RecoveryTarget as _rookery_v1_RecoveryTarget, RecoveryTarget__Output as _rookery_v1_RecoveryTarget__Output } from '../../rookery/v1/RecoveryTarget';

export interface PhysicalTarget {
  'directory'?: (string);
  'recoveryTarget'?: (_rookery_v1_RecoveryTarget | null);
  'start'?: (boolean);
  '_start'?: "start";
}

export interface PhysicalTarget__Output {
  'directory': (string);
  'recoveryTarget': (_rookery_v1_RecoveryTarget__Output | null);
  'start'?: (boolean);
  '_start'?: "start";
}
