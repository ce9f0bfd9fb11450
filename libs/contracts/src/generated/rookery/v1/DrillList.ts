// Original file: proto/rookery/v1/drill.proto

import type { DrillRecord as _rookery_v1_DrillRecord, DrillRecord__Output as _rookery_v1_DrillRecord__Output } from '../../rookery/v1/DrillRecord';

export interface DrillList {
  'drills'?: (_rookery_v1_DrillRecord)[];
}

export interface DrillList__Output {
  'drills': (_rookery_v1_DrillRecord__Output)[];
}
