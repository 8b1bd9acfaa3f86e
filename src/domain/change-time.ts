// Channel Talk's change times (`updatedAt`, `unsubscribeEmailUpdatedAt`, `unsubscribeTextingUpdatedAt`, and
// `createdAt`) are epoch milliseconds, but the lookup's check does not look at them (src/channel/user-schema.ts):
// null, a string or a JSON `1e999` (Infinity once parsed) may stand there. Every place that reads one reads it
// through changeTime, so the decision, the verdict and the audit log agree on which times are known.
import type { ChannelUser } from './types';

/** The change times of a user the repair reads, each its own or none. */
export const CHANGE_TIME_KEYS = ['updatedAt', 'unsubscribeEmailUpdatedAt', 'unsubscribeTextingUpdatedAt'] as const;
export type ChangeTimes = Pick<ChannelUser, (typeof CHANGE_TIME_KEYS)[number]>;

/** A change time as Channel Talk sent it: a finite number, or undefined (not known) for anything else. */
export function changeTime(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
