// What a receiver using the official Standard Webhooks library (`standardwebhooks`, as docs/running.md tells
// receivers to) makes of one delivery: the tests check our signatures with it, not with code of our own.
import type { IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { vi } from 'vitest';

export type ReceiverVerdict = { ok: true; webhookId: string; timestamp: number } | { ok: false; error: string };

/**
 * Verifies `delivery` as a receiver would with `secret`: a `whsec_` secret as it is, a raw one as its UTF-8 bytes
 * with `{ format: 'raw' }` (the library would read a string as Latin-1). `at` (ms since the epoch, default now) is
 * the receiver's clock for the library's five-minute window.
 */
export function verifyAsReceiver(
  secret: string,
  delivery: { headers: IncomingHttpHeaders | Record<string, string>; rawBody: string | Uint8Array },
  at?: number,
): ReceiverVerdict {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(delivery.headers))
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(' ') : value;
  const webhook = secret.startsWith('whsec_')
    ? new Webhook(secret)
    : new Webhook(new TextEncoder().encode(secret), { format: 'raw' });
  if (at !== undefined) {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(at);
  }
  try {
    webhook.verify(delivery.rawBody, headers, { jsonParse: false });
    return { ok: true, webhookId: headers['webhook-id']!, timestamp: Number(headers['webhook-timestamp']) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    if (at !== undefined) vi.useRealTimers();
  }
}
