import { TierName } from '@rookery/core';

/** The tier this service backs up. */
export const OLTP_TIER: TierName = 'oltp';
