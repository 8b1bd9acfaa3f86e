// The answer of Channel Talk's `GET /open/v5/channel` (OpenAPI `open.v5.ChannelView`: `{ channel: {...} }`).
// Only what the preflight reads is checked, tolerantly: an id is all that identifies the channel; a missing or
// null name must not stop a run. Everything else is ignored (and never logged).
import { z } from 'zod';

export const channelResponseSchema = z.looseObject({
  channel: z.looseObject({
    // Channel ids are strings in the OpenAPI document; a numeric one is taken as its text.
    id: z.union([z.string().min(1), z.number().transform(String)]),
    name: z.string().nullable().optional(),
  }),
});

/** Which channel the credentials open: what every run, status and start-up line shows. */
export interface ChannelInfo {
  id: string;
  name: string | null;
}

/** `channel "Acme" (id 123)`, or `channel 123` when it has no name. */
export function describeChannel(channel: ChannelInfo): string {
  return channel.name ? `channel ${JSON.stringify(channel.name)} (id ${channel.id})` : `channel ${channel.id}`;
}
