// The sender's side of Standard Webhooks (https://www.standardwebhooks.com) symmetric signatures: HMAC-SHA256 over
// `${webhook-id}.${webhook-timestamp}.${body}`, sent as `webhook-signature: v1,<base64>`. Receivers verify with the
// official `standardwebhooks` library (docs/running.md); test/unit/signature.test.ts checks our signatures with it.
//
// Secret format:
// - `whsec_<base64>` (the spec's serialisation): the key is the base64-decoded bytes. This is the form to use;
//   it is what the reference libraries (standardwebhooks, svix) expect, so receivers can use them unchanged.
// - anything else is taken as a raw secret: the key is the string's UTF-8 bytes (what the reference libraries
//   call `{ format: "raw" }`). Note that the reference libraries, given an unprefixed string, base64-decode it
//   instead; a receiver using them with a raw secret must pass `{ format: "raw" }`.
//
// Nothing here logs, and no error message carries the secret, a signature or the body.
import { createHmac } from 'node:crypto';

export const SIGNING_SECRET_PREFIX = 'whsec_';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Why a secret is unusable, or undefined when it is fine. Never quotes the secret. */
export function signingSecretProblem(secret: string): string | undefined {
  if (secret.length === 0) return 'must not be empty';
  if (!secret.startsWith(SIGNING_SECRET_PREFIX)) return undefined;
  const encoded = secret.slice(SIGNING_SECRET_PREFIX.length);
  if (encoded.length === 0 || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    return `must be "${SIGNING_SECRET_PREFIX}" followed by standard base64 (or a raw secret without that prefix)`;
  }
  if (Buffer.from(encoded, 'base64').length === 0) return 'decodes to an empty key';
  return undefined;
}

/** The HMAC key a secret stands for (see the format note at the top of this file). Throws on an unusable secret. */
export function signingKey(secret: string | Uint8Array): Buffer {
  if (typeof secret !== 'string') {
    if (secret.length === 0) throw new TypeError('webhook signing secret must not be empty');
    return Buffer.from(secret);
  }
  const problem = signingSecretProblem(secret);
  if (problem) throw new TypeError(`webhook signing secret ${problem}`);
  return secret.startsWith(SIGNING_SECRET_PREFIX)
    ? Buffer.from(secret.slice(SIGNING_SECRET_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/**
 * The `webhook-signature` header value (`v1,<base64>`) for one attempt.
 * `timestamp` is integer seconds since the epoch, the same number sent as `webhook-timestamp`.
 */
export function signWebhook(input: {
  secret: string | Uint8Array;
  webhookId: string;
  timestamp: number;
  body: string | Uint8Array;
}): string {
  return createWebhookSigner(input.secret)(input.webhookId, input.timestamp, input.body);
}

/** `signWebhook` with the secret decoded once, for a sender that signs every attempt. */
export function createWebhookSigner(
  secret: string | Uint8Array,
): (webhookId: string, timestamp: number, body: string | Uint8Array) => string {
  const key = signingKey(secret);
  return (webhookId, timestamp, body) => {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0)
      throw new RangeError('webhook timestamp must be a non-negative integer number of seconds');
    const mac = createHmac('sha256', key).update(`${webhookId}.${timestamp}.`, 'utf8').update(body);
    return `v1,${mac.digest('base64')}`;
  };
}
