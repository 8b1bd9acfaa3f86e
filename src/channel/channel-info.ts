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

interface StartupLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

/**
 * The worker's start-up line: which channel its credentials open. Never fatal (the run's own check in prepare
 * is what stops a run); a failure is a warning naming the cause, never the credentials.
 */
export async function logWorkerChannel(
  client: { getChannel(): Promise<import('./client').ChannelInfoResult> },
  logger: StartupLogger,
): Promise<void> {
  try {
    const result = await client.getChannel();
    if (result.kind === 'found') {
      logger.info(`worker credentials open ${describeChannel(result.channel)}`, {
        channelId: result.channel.id,
        channelName: result.channel.name,
      });
      return;
    }
    const reason =
      result.kind === 'bad-credentials'
        ? `Channel Talk refused CHANNEL_ACCESS_KEY / CHANNEL_ACCESS_SECRET (HTTP ${result.status})`
        : result.kind === 'not-found'
          ? `CHANNEL_API_URL looks wrong: GET /open/v5/channel answered ${result.status}`
          : `GET /open/v5/channel failed: ${result.reason}`;
    logger.warn(
      `cannot tell which channel the worker credentials open: ${reason}; runs will stop in their preparation until this is fixed`,
    );
  } catch (err) {
    logger.warn(`cannot tell which channel the worker credentials open: ${err instanceof Error ? err.name : 'error'}`);
  }
}
