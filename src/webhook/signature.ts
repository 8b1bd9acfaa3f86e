// Standard Webhooks (https://www.standardwebhooks.com) symmetric signatures: HMAC-SHA256 over
// `${webhook-id}.${webhook-timestamp}.${body}`, sent as `webhook-signature: v1,<base64>`.
//
// Secret format:
// - `whsec_<base64>` (the spec's serialisation): the key is the base64-decoded bytes. This is the form to use;
//   it is what the reference libraries (standardwebhooks, svix) expect, so receivers can use them unchanged.
// - anything else is taken as a raw secret: the key is the string's UTF-8 bytes (what the reference libraries
//   call `{ format: "raw" }`). Note that the reference libraries, given an unprefixed string, base64-decode it
//   instead; a receiver using them with a raw secret must pass `{ format: "raw" }`.
//
// Nothing here logs, and no error message carries the secret, a signature or the body.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNING_SECRET_PREFIX = 'whsec_';
/** The spec's replay window: a timestamp further than this from now (either way) is refused. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

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

function toBytes(body: string | Uint8Array): Buffer {
  return typeof body === 'string'
    ? Buffer.from(body, 'utf8')
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function hmac(key: Buffer, webhookId: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${webhookId}.${timestamp}.`, 'utf8').update(toBytes(body)).digest();
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
    return `v1,${hmac(key, webhookId, timestamp, body).toString('base64')}`;
  };
}

/** Header maps as Node (`req.headers`), plain objects or fetch's `Headers` give them. Names are matched case-insensitively. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export type WebhookVerificationFailure =
  'missing-headers' | 'invalid-timestamp' | 'timestamp-too-old' | 'timestamp-too-new' | 'no-matching-signature';

export type WebhookVerificationResult =
  | { ok: true; webhookId: string; timestamp: number }
  | { ok: false; reason: WebhookVerificationFailure; message: string };

export interface VerifyWebhookSignatureInput {
  /** `whsec_<base64>` or a raw secret (see the format note at the top of this file). */
  secret: string | Uint8Array;
  headers: HeaderSource;
  /** The request body exactly as received: the raw bytes, or their UTF-8 text. Never a re-serialised object. */
  body: string | Uint8Array;
  /** Default 300 (the spec's five minutes). */
  toleranceSeconds?: number;
  /** The current time, ms since the epoch (like Date.now()) or a Date. Default: now. */
  now?: number | Date;
}

/**
 * Checks a Standard Webhooks signed request. Returns `{ ok: true, webhookId, timestamp }` or
 * `{ ok: false, reason, message }`; it throws only for an unusable secret (a configuration error).
 * Several space-separated signatures are accepted (key rotation); entries other than `v1,` are ignored.
 * Use the returned webhookId as the idempotency key: every attempt of one replay carries the same id.
 */
export function verifyWebhookSignature(input: VerifyWebhookSignatureInput): WebhookVerificationResult {
  const key = signingKey(input.secret);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!Number.isFinite(tolerance) || tolerance < 0)
    throw new RangeError('toleranceSeconds must be a non-negative number');
  const id = header(input.headers, 'webhook-id');
  const timestampText = header(input.headers, 'webhook-timestamp');
  const signatures = header(input.headers, 'webhook-signature');
  const missing = [
    ['webhook-id', id],
    ['webhook-timestamp', timestampText],
    ['webhook-signature', signatures],
  ]
    .filter(([, v]) => !v)
    .map(([name]) => name);
  if (missing.length > 0 || !id || !timestampText || !signatures) {
    return fail('missing-headers', `missing header${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  }
  if (!/^\d{1,15}$/.test(timestampText.trim()))
    return fail('invalid-timestamp', 'webhook-timestamp is not an integer number of seconds');
  const timestamp = Number(timestampText.trim());
  const nowMs = input.now === undefined ? Date.now() : input.now instanceof Date ? input.now.getTime() : input.now;
  const nowSeconds = Math.floor(nowMs / 1000);
  if (nowSeconds - timestamp > tolerance) {
    return fail(
      'timestamp-too-old',
      `webhook-timestamp is ${nowSeconds - timestamp}s old, more than the ${tolerance}s tolerance`,
    );
  }
  if (timestamp - nowSeconds > tolerance) {
    return fail(
      'timestamp-too-new',
      `webhook-timestamp is ${timestamp - nowSeconds}s in the future, more than the ${tolerance}s tolerance`,
    );
  }

  const expected = hmac(key, id, timestamp, input.body);
  let matched = false;
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const encoded = entry.slice(comma + 1);
    if (!BASE64.test(encoded)) continue;
    const given = Buffer.from(encoded, 'base64');
    // Every candidate is compared in constant time; no early exit on the first match either.
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  if (!matched)
    return fail('no-matching-signature', 'no v1 signature in webhook-signature matches this body, id and timestamp');
  return { ok: true, webhookId: id, timestamp };
}

/** Thrown by `assertWebhookSignature`; `reason` says which check failed. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
  constructor(
    readonly reason: WebhookVerificationFailure,
    message: string,
  ) {
    super(message);
  }
}

/** `verifyWebhookSignature` for code that prefers exceptions: returns the id and timestamp or throws WebhookVerificationError. */
export function assertWebhookSignature(input: VerifyWebhookSignatureInput): { webhookId: string; timestamp: number } {
  const result = verifyWebhookSignature(input);
  if (!result.ok) throw new WebhookVerificationError(result.reason, result.message);
  return { webhookId: result.webhookId, timestamp: result.timestamp };
}

function fail(reason: WebhookVerificationFailure, message: string): WebhookVerificationResult {
  return { ok: false, reason, message };
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() !== name) continue;
    // A repeated header: Node joins most into one comma string but keeps some as arrays; signatures are space separated.
    return Array.isArray(v) ? v.join(' ') : v;
  }
  return undefined;
}
