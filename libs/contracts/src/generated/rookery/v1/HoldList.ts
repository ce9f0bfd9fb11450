// Original file: proto/rookery/v1/hold.proto

import type { Hold as _rookery_v1_Hold, Hold__Output as _rookery_v1_Hold__Output } from '../../rookery/v1/Hold';

export interface HoldList {
  'holds'?: (_rookery_v1_Hold)[];
}

export interface HoldList__Output {
  'holds': (_rookery_v1_Hold__Output)[];
}
