// Original file: proto/rookery/v1/compliance.proto

import type { BackupPoint as _rookery_v1_BackupPoint, BackupPoint__Output as _rookery_v1_BackupPoint__Output } from '../../rookery/v1/BackupPoint';
import type { ExposurePoint as _rookery_v1_ExposurePoint, ExposurePoint__Output as _rookery_v1_ExposurePoint__Output } from '../../rookery/v1/ExposurePoint';
import type { DrillPoint as _rookery_v1_DrillPoint, DrillPoint__Output as _rookery_v1_DrillPoint__Output } from '../../rookery/v1/DrillPoint';

export interface ComplianceSeries {
  'backups'?: (_rookery_v1_BackupPoint)[];
  'exposure'?: (_rookery_v1_ExposurePoint)[];
  'drills'?: (_rookery_v1_DrillPoint)[];
}

export interface ComplianceSeries__Output {
  'backups': (_rookery_v1_BackupPoint__Output)[];
  'exposure': (_rookery_v1_ExposurePoint__Output)[];
  'drills': (_rookery_v1_DrillPoint__Output)[];
}
