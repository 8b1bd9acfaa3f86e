import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config';
import { startWebhookReceiver, type WebhookReceiver } from '../../dev/simulator/webhook-receiver';
import { signingKey, signingSecretProblem, signWebhook } from '../../src/webhook/signature';
import { buildUpsertPayload } from '../../src/webhook/payload';
import { createWebhookSender } from '../../src/webhook/sender';
import { webhookId } from '../../src/webhook/webhook-id';
import { verifyAsReceiver } from '../support/standard-webhooks';

// The Standard Webhooks reference test vector, from standard-webhooks/standard-webhooks
// libraries/javascript/src/webhook.test.ts ("sign function works") and the same file's fixtures.
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

describe('Standard Webhooks signatures: the published test vector', () => {
  it('signs the spec vector to the published signature, as the official library does', () => {
    expect(signWebhook({ secret: SPEC_SECRET, webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: SPEC_BODY })).toBe(
      SPEC_SIGNATURE,
    );
    // Bytes or text: the same signature.
    expect(
      signWebhook({ secret: SPEC_SECRET, webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: Buffer.from(SPEC_BODY) }),
    ).toBe(SPEC_SIGNATURE);
    expect(new Webhook(SPEC_SECRET).sign(SPEC_ID, new Date(SPEC_TIMESTAMP * 1000), SPEC_BODY)).toBe(SPEC_SIGNATURE);
  });
});

describe('our signatures, verified by the official standardwebhooks library (what receivers use)', () => {
  const now = Date.now();
  const timestamp = Math.floor(now / 1000);
  /** A delivery as the sender makes it: the three headers over `body`. */
  const signed = (secret: string, body: string | Uint8Array, id = SPEC_ID, at = timestamp) => ({
    headers: {
      'webhook-id': id,
      'webhook-timestamp': String(at),
      'webhook-signature': signWebhook({ secret, webhookId: id, timestamp: at, body }),
    },
    rawBody: body,
  });

  it.each<[string, string, string | Uint8Array]>([
    ['the spec secret', SPEC_SECRET, SPEC_BODY],
    ['a fresh whsec_ secret, a non-ASCII body', `whsec_${randomBytes(32).toString('base64')}`, '{"name":"서명 ✓"}'],
    ['a body given as bytes', SPEC_SECRET, Buffer.from('{"name":"서명 ✓"}', 'utf8')],
    ['a raw ASCII secret', 'my raw signing secret', SPEC_BODY],
    ['a raw non-ASCII secret (its UTF-8 bytes)', '서명 비밀 ✓', SPEC_BODY],
  ])('%s', (_name, secret, body) => {
    expect(verifyAsReceiver(secret, signed(secret, body), now)).toEqual({ ok: true, webhookId: SPEC_ID, timestamp });
  });

  it('a tampered body, id or timestamp, another secret, or an attempt over five minutes off is refused', () => {
    const good = signed(SPEC_SECRET, SPEC_BODY);
    const refused = (delivery: typeof good, at = now) => verifyAsReceiver(SPEC_SECRET, delivery, at);
    const noMatch = { ok: false, error: 'No matching signature found' };
    expect(refused({ ...good, rawBody: '{"test":2432232314}' })).toEqual(noMatch); // re-serialised JSON
    expect(refused({ ...good, headers: { ...good.headers, 'webhook-id': 'msg_other' } })).toEqual(noMatch);
    expect(refused({ ...good, headers: { ...good.headers, 'webhook-timestamp': String(timestamp + 1) } })).toEqual(
      noMatch,
    );
    expect(verifyAsReceiver(`whsec_${randomBytes(24).toString('base64')}`, good, now)).toEqual(noMatch);
    expect(refused(good, now + 301_000)).toEqual({ ok: false, error: 'Message timestamp too old' });
    expect(refused(good, now - 301_000)).toEqual({ ok: false, error: 'Message timestamp too new' });
  });

  it('a raw secret given to the library as a string with { format: "raw" }: right for ASCII only', () => {
    // The library reads such a string one byte per UTF-16 unit, not as UTF-8: docs/running.md tells receivers
    // with a non-ASCII raw secret to pass its UTF-8 bytes.
    const verifies = (secret: string) => {
      const d = signed(secret, SPEC_BODY);
      try {
        new Webhook(secret, { format: 'raw' }).verify(d.rawBody, d.headers, { jsonParse: false });
        return true;
      } catch {
        return false;
      }
    };
    expect(verifies('my raw signing secret')).toBe(true);
    expect(verifies('서명 비밀')).toBe(false);
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
    expect(() => signWebhook({ secret: 'whsec_abc', webhookId: SPEC_ID, timestamp: SPEC_TIMESTAMP, body: '' })).toThrow(
      TypeError,
    );
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
      expect(verifyAsReceiver(secret, d, now)).toEqual({
        ok: true,
        webhookId: id,
        timestamp: Number(d.headers['webhook-timestamp']),
      });
      expect(verifyAsReceiver(secret, { ...d, rawBody: Buffer.from(d.rawBody, 'utf8') }, now).ok).toBe(true);
      // Tampered body, other secret.
      expect(verifyAsReceiver(secret, { ...d, rawBody: d.rawBody.replace('true', 'false') }, now).ok).toBe(false);
      expect(verifyAsReceiver('another secret', d, now).ok).toBe(false);
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
    expect(verifyAsReceiver(secret, d)).toMatchObject({ ok: true, webhookId: fresh });
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
    expect(verifyAsReceiver(secret, d)).toEqual({ ok: false, error: 'Missing required headers' });
    expect(() => createWebhookSender({ url: receiver.url, signingSecret: 'whsec_%%' })).toThrow(
      /invalid webhook sender options: signingSecret/,
    );
  });
});
