import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config';
import {
  assertWebhookSignature,
  signWebhook,
  signingKey,
  verifyWebhookSignature,
  WebhookVerificationError,
  type VerifyWebhookSignatureInput,
} from '../../src/index';
import { startWebhookReceiver, type WebhookReceiver } from '../../dev/simulator/webhook-receiver';
import { signingSecretProblem } from '../../src/webhook/signature';
import { buildUpsertPayload } from '../../src/webhook/payload';
import { createWebhookSender } from '../../src/webhook/sender';
import { webhookId } from '../../src/webhook/webhook-id';

// The Standard Webhooks reference test vector, from standard-webhooks/standard-webhooks
// libraries/javascript/src/webhook.test.ts ("sign function works") and the same file's fixtures.
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
const SPEC_NOW_MS = SPEC_TIMESTAMP * 1000;

function specInput(
  over: Partial<VerifyWebhookSignatureInput> = {},
  headers: Record<string, string> = {},
): VerifyWebhookSignatureInput {
  return {
    secret: SPEC_SECRET,
    body: SPEC_BODY,
    now: SPEC_NOW_MS,
    headers: {
      'webhook-id': SPEC_ID,
      'webhook-timestamp': String(SPEC_TIMESTAMP),
      'webhook-signature': SPEC_SIGNATURE,
      ...headers,
    },
    ...over,
  };
}

describe('Standard Webhooks signatures: the published test vector', () => {
  it('signs the spec vector to the published signature', () => {
    expect(signWebhook({ secret: SPEC_SECRET, webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: SPEC_BODY })).toBe(
      SPEC_SIGNATURE,
    );
    // Bytes or text: the same signature.
    expect(
      signWebhook({ secret: SPEC_SECRET, webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: Buffer.from(SPEC_BODY) }),
    ).toBe(SPEC_SIGNATURE);
  });

  it('verifies the spec vector, from Node-style, mixed-case and fetch Headers', () => {
    expect(verifyWebhookSignature(specInput())).toEqual({ ok: true, webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP });
    const mixed = {
      'Webhook-Id': SPEC_ID,
      'WEBHOOK-TIMESTAMP': String(SPEC_TIMESTAMP),
      'Webhook-Signature': SPEC_SIGNATURE,
    };
    expect(verifyWebhookSignature({ ...specInput(), headers: mixed }).ok).toBe(true);
    expect(verifyWebhookSignature({ ...specInput(), headers: new Headers(mixed) }).ok).toBe(true);
    expect(verifyWebhookSignature({ ...specInput(), body: new TextEncoder().encode(SPEC_BODY) }).ok).toBe(true);
    expect(verifyWebhookSignature({ ...specInput(), now: new Date(SPEC_NOW_MS) }).ok).toBe(true);
  });

  it('accepts several space-separated signatures when one v1 entry matches (the reference multi-signature case)', () => {
    const header = [
      'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      'v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      SPEC_SIGNATURE,
      'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
    ].join(' ');
    expect(verifyWebhookSignature(specInput({}, { 'webhook-signature': header })).ok).toBe(true);
    // The same list without the valid entry fails; so does the valid signature under another version tag.
    expect(verifyWebhookSignature(specInput({}, { 'webhook-signature': header.replace(SPEC_SIGNATURE, '') })).ok).toBe(
      false,
    );
    expect(
      verifyWebhookSignature(specInput({}, { 'webhook-signature': SPEC_SIGNATURE.replace('v1,', 'v1a,') })).ok,
    ).toBe(false);
  });
});

describe('verifyWebhookSignature rejections', () => {
  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('missing %s', (name) => {
    const input = specInput();
    const headers = { ...(input.headers as Record<string, string>) };
    delete headers[name];
    expect(verifyWebhookSignature({ ...input, headers })).toEqual({
      ok: false,
      reason: 'missing-headers',
      message: `missing header: ${name}`,
    });
  });

  it('no headers at all names all three', () => {
    const r = verifyWebhookSignature({ ...specInput(), headers: {} });
    expect(r).toMatchObject({ ok: false, reason: 'missing-headers' });
    expect(!r.ok && r.message).toBe('missing headers: webhook-id, webhook-timestamp, webhook-signature');
  });

  it('a timestamp that is not integer seconds', () => {
    for (const bad of ['hello', '1614265330.5', '-1614265330', '1614265330000000000']) {
      expect(verifyWebhookSignature(specInput({}, { 'webhook-timestamp': bad }))).toMatchObject({
        ok: false,
        reason: 'invalid-timestamp',
      });
    }
  });

  it('stale and future timestamps beyond the tolerance (default 300 s, or as given); the edges still pass', () => {
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS + 300_000 })).ok).toBe(true);
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS + 301_000 }))).toMatchObject({
      ok: false,
      reason: 'timestamp-too-old',
    });
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS - 300_000 })).ok).toBe(true);
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS - 301_000 }))).toMatchObject({
      ok: false,
      reason: 'timestamp-too-new',
    });
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS + 31_000, toleranceSeconds: 30 }))).toMatchObject({
      ok: false,
      reason: 'timestamp-too-old',
    });
    expect(verifyWebhookSignature(specInput({ now: SPEC_NOW_MS + 29_000, toleranceSeconds: 30 })).ok).toBe(true);
    // The spec vector is from 2021: with the real clock it is long stale.
    expect(verifyWebhookSignature({ ...specInput(), now: undefined })).toMatchObject({
      ok: false,
      reason: 'timestamp-too-old',
    });
  });

  it('tampering with the body, id or timestamp, or the wrong secret, finds no matching signature', () => {
    const noMatch = { ok: false, reason: 'no-matching-signature' };
    expect(verifyWebhookSignature(specInput({ body: '{"test": 2432232315}' }))).toMatchObject(noMatch);
    expect(verifyWebhookSignature(specInput({ body: '{"test":2432232314}' }))).toMatchObject(noMatch); // re-serialised JSON
    expect(verifyWebhookSignature(specInput({}, { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJeK' }))).toMatchObject(
      noMatch,
    );
    expect(verifyWebhookSignature(specInput({}, { 'webhook-timestamp': String(SPEC_TIMESTAMP + 1) }))).toMatchObject(
      noMatch,
    );
    expect(verifyWebhookSignature(specInput({ secret: `whsec_${randomBytes(24).toString('base64')}` }))).toMatchObject(
      noMatch,
    );
  });

  it('partial and malformed signatures fail (the reference "partial signature" cases)', () => {
    for (const bad of [
      SPEC_SIGNATURE.slice(0, 8),
      'v1,',
      'v1,dawfeoifkpqwoekfpqoekf',
      'g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
      ' ',
    ]) {
      expect(verifyWebhookSignature(specInput({}, { 'webhook-signature': bad })).ok, JSON.stringify(bad)).toBe(false);
    }
  });

  it('assertWebhookSignature returns the id and timestamp, or throws WebhookVerificationError with the reason', () => {
    expect(assertWebhookSignature(specInput())).toEqual({ webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP });
    let thrown: unknown;
    try {
      assertWebhookSignature(specInput({ body: 'tampered' }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(WebhookVerificationError);
    expect((thrown as WebhookVerificationError).reason).toBe('no-matching-signature');
  });
});

describe('secret formats', () => {
  it('whsec_ secrets are base64 key bytes; any other string is a raw secret (its UTF-8 bytes)', () => {
    expect(signingKey(SPEC_SECRET)).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    const raw = 'my raw signing secret';
    expect(signingKey(raw)).toEqual(Buffer.from(raw, 'utf8'));
    // A raw secret signs exactly like the whsec_ form of its bytes.
    const asWhsec = `whsec_${Buffer.from(raw, 'utf8').toString('base64')}`;
    const at = { webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: SPEC_BODY };
    expect(signWebhook({ secret: raw, ...at })).toBe(signWebhook({ secret: asWhsec, ...at }));
    // Without the prefix the spec secret's text is a raw secret, so it does not produce the spec signature.
    expect(signWebhook({ secret: SPEC_SECRET.slice('whsec_'.length), ...at })).not.toBe(SPEC_SIGNATURE);
  });

  it('unusable secrets are refused with a message that does not quote them', () => {
    for (const bad of ['', 'whsec_', 'whsec_not base64!', 'whsec_abc']) {
      expect(signingSecretProblem(bad), JSON.stringify(bad)).toBeDefined();
      expect(() => signingKey(bad)).toThrow(TypeError);
      if (bad.length > 6) {
        try {
          signingKey(bad);
        } catch (err) {
          expect((err as Error).message).not.toContain(bad.slice(6));
        }
      }
    }
    expect(() => verifyWebhookSignature(specInput({ secret: 'whsec_abc' }))).toThrow(TypeError);
  });

  it('WEBHOOK_SIGNING_SECRET is optional, validated, and never echoed or logged', () => {
    const required = { CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's' };
    expect(loadConfig(required).WEBHOOK_SIGNING_SECRET).toBeUndefined();
    expect(loadConfig({ ...required, WEBHOOK_SIGNING_SECRET: '  ' }).WEBHOOK_SIGNING_SECRET).toBeUndefined();
    const good = loadConfig({ ...required, WEBHOOK_SIGNING_SECRET: SPEC_SECRET });
    expect(good.WEBHOOK_SIGNING_SECRET).toBe(SPEC_SECRET);
    expect(JSON.stringify(describeConfig(good))).not.toContain('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    expect(describeConfig(good).WEBHOOK_SIGNING_SECRET).toMatch(/^\(set/);
    const badSecret = 'whsec_%%%secret-value%%%';
    let thrown: unknown;
    try {
      loadConfig({ ...required, WEBHOOK_SIGNING_SECRET: badSecret });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(/^invalid configuration: WEBHOOK_SIGNING_SECRET /);
    expect((thrown as Error).message).not.toContain('secret-value');
  });
});

describe('round trip: the real sender signs what it sends, a real receiver gets it', () => {
  let receiver: WebhookReceiver;
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterAll(() => receiver.close());

  const user = {
    id: 'u-1',
    memberId: 'm-sig-1',
    email: 'sig@example.com',
    name: '서명 테스트 ✓',
    unsubscribeEmail: true,
  };
  const id = webhookId('sig-run', 'm-sig-1', 'upsert');

  it('every attempt carries its own timestamp and a signature over the exact bytes received', async () => {
    let clock = Date.now();
    const sender = createWebhookSender({ url: receiver.url, token: 'tok', signingSecret: secret, now: () => clock });
    try {
      const first = await sender.send({ webhookId: id, payload: buildUpsertPayload(user) });
      clock += 7_000; // a retry, seven seconds later
      const second = await sender.send({ webhookId: id, payload: buildUpsertPayload(user) });
      expect(first).toEqual({ kind: 'delivered', status: 200 });
      expect(second).toEqual({ kind: 'delivered', status: 200 });
    } finally {
      await sender.close();
    }
    const got = receiver.deliveries().filter((d) => d.webhookId === id);
    expect(got).toHaveLength(2);
    const [a, b] = got as [(typeof got)[0], (typeof got)[0]];
    expect(Number(b.headers['webhook-timestamp']) - Number(a.headers['webhook-timestamp'])).toBe(7);
    expect(a.headers['webhook-signature']).not.toBe(b.headers['webhook-signature']);
    for (const d of got) {
      expect(d.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(d.rawBody).toContain('서명 테스트 ✓'); // non-ASCII bytes signed as sent
      const now = Number(d.headers['webhook-timestamp']) * 1000;
      expect(verifyWebhookSignature({ secret, headers: d.headers, body: d.rawBody, now })).toEqual({
        ok: true,
        webhookId: id,
        timestamp: Number(d.headers['webhook-timestamp']),
      });
      expect(verifyWebhookSignature({ secret, headers: d.headers, body: Buffer.from(d.rawBody, 'utf8'), now }).ok).toBe(
        true,
      );
      // Tampered body, stale delivery, other secret.
      expect(
        verifyWebhookSignature({ secret, headers: d.headers, body: d.rawBody.replace('true', 'false'), now }),
      ).toMatchObject({ ok: false, reason: 'no-matching-signature' });
      expect(verifyWebhookSignature({ secret, headers: d.headers, body: d.rawBody, now: now + 301_000 })).toMatchObject(
        { ok: false, reason: 'timestamp-too-old' },
      );
      expect(
        verifyWebhookSignature({ secret: 'another secret', headers: d.headers, body: d.rawBody, now }),
      ).toMatchObject({ ok: false, reason: 'no-matching-signature' });
    }
  });

  it('the real clock: a fresh delivery verifies with the default now and tolerance', async () => {
    const sender = createWebhookSender({ url: receiver.url, signingSecret: secret });
    const fresh = webhookId('sig-run', 'm-sig-2', 'upsert');
    try {
      expect(
        await sender.send({ webhookId: fresh, payload: buildUpsertPayload({ ...user, memberId: 'm-sig-2' }) }),
      ).toMatchObject({ kind: 'delivered' });
    } finally {
      await sender.close();
    }
    const d = receiver.deliveries().find((x) => x.webhookId === fresh)!;
    expect(Math.abs(Number(d.headers['webhook-timestamp']) * 1000 - d.receivedAt)).toBeLessThan(2_000);
    expect(verifyWebhookSignature({ secret, headers: d.headers, body: d.rawBody })).toMatchObject({
      ok: true,
      webhookId: fresh,
    });
  });

  it('without a signing secret nothing is signed (and an unusable one is refused up front)', async () => {
    const sender = createWebhookSender({ url: receiver.url });
    const unsigned = webhookId('sig-run', 'm-sig-3', 'upsert');
    try {
      await sender.send({ webhookId: unsigned, payload: buildUpsertPayload({ ...user, memberId: 'm-sig-3' }) });
    } finally {
      await sender.close();
    }
    const d = receiver.deliveries().find((x) => x.webhookId === unsigned)!;
    expect(d.headers['webhook-signature']).toBeUndefined();
    expect(d.headers['webhook-timestamp']).toBeUndefined();
    expect(verifyWebhookSignature({ secret, headers: d.headers, body: d.rawBody })).toMatchObject({
      ok: false,
      reason: 'missing-headers',
    });
    expect(() => createWebhookSender({ url: receiver.url, signingSecret: 'whsec_%%' })).toThrow(
      /invalid webhook sender options: signingSecret/,
    );
  });
});
