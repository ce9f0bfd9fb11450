// Original file: proto/rookery/v1/compliance.proto

import type { ExpiredEarly as _rookery_v1_ExpiredEarly, ExpiredEarly__Output as _rookery_v1_ExpiredEarly__Output } from '../../rookery/v1/ExpiredEarly';
import type { KeptPastPolicy as _rookery_v1_KeptPastPolicy, KeptPastPolicy__Output as _rookery_v1_KeptPastPolicy__Output } from '../../rookery/v1/KeptPastPolicy';

export interface RetentionAdherence {
  'expiredEarly'?: (_rookery_v1_ExpiredEarly)[];
  'keptPastPolicy'?: (_rookery_v1_KeptPastPolicy)[];
  'ok'?: (boolean);
}

export interface RetentionAdherence__Output {
  'expiredEarly': (_rookery_v1_ExpiredEarly__Output)[];
  'keptPastPolicy': (_rookery_v1_KeptPastPolicy__Output)[];
  'ok': (boolean);
}
