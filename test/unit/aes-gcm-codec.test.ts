import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPayloadConverter, METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import {
  AesGcmCodec,
  CodecError,
  codecFromEnvValues,
  defaultKeyId,
  ENCRYPTED_ENCODING,
  METADATA_ENCRYPTION_KEY_ID,
  parseCodecKey,
  payloadToJson,
  type JsonPayload,
} from '../../src/codec/aes-gcm-codec';
import { startCodecServer, type CodecServer } from '../../src/codec/codec-server';
import { ConfigError, describeConfig, loadConfig } from '../../src/config';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 9);
const utf8 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array(0)).toString('utf8');
const meta = (p: Payload, k: string) => utf8(p.metadata?.[k]);
const json = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const canonical = (p: Payload) => payloadToJson(p);

const SAMPLES: Array<{ name: string; payload: Payload; plaintext?: string }> = [
  {
    name: 'json object with non-ASCII text',
    payload: json({ source: { type: 'csv', path: '/data/회원.csv' }, batchSize: 25 }),
    plaintext: '/data/',
  },
  { name: 'json string', payload: json('junho.kim112@example.org'), plaintext: 'junho.kim112@example.org' },
  { name: 'undefined (binary/null, empty data)', payload: json(undefined) },
  { name: 'raw bytes (binary/plain)', payload: json(new Uint8Array([0, 1, 2, 250, 255])) },
  {
    name: 'extra metadata keys',
    payload: {
      metadata: { encoding: Buffer.from('json/plain'), messageType: Buffer.from('x.y.Z') },
      data: Buffer.from('{"a":1}'),
    },
    plaintext: 'x.y.Z',
  },
  { name: 'one megabyte', payload: json({ blob: 'p'.repeat(1_000_000) }), plaintext: 'pppppppppppppppp' },
];

describe('AesGcmCodec: round trip', () => {
  const codec = new AesGcmCodec({ key: KEY, keyId: 'k1' });
  it.each(SAMPLES)('$name', async ({ payload, plaintext }) => {
    const [encoded] = await codec.encode([payload]);
    expect(meta(encoded!, METADATA_ENCODING_KEY)).toBe(ENCRYPTED_ENCODING);
    expect(meta(encoded!, METADATA_ENCRYPTION_KEY_ID)).toBe('k1');
    expect(Object.keys(encoded!.metadata ?? {}).sort()).toEqual(
      [METADATA_ENCODING_KEY, METADATA_ENCRYPTION_KEY_ID].sort(),
    );
    if (plaintext) {
      expect(utf8(encoded!.data)).not.toContain(plaintext);
      expect(Buffer.from(encoded!.data!).toString('base64')).not.toContain(Buffer.from(plaintext).toString('base64'));
    }
    const [decoded] = await codec.decode([encoded!]);
    expect(canonical(decoded!)).toEqual(canonical(payload));
  });

  it('decodes back to the value through the SDK payload converter', async () => {
    const value = { source: { type: 'jsonl', path: '/x/members.jsonl' }, dryRun: true, nested: [1, 'two', null] };
    const [decoded] = await codec.decode(await codec.encode([json(value)]));
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(value);
  });

  it('uses a fresh random IV for every payload', async () => {
    const encoded = await codec.encode(Array.from({ length: 50 }, () => json({ same: 'value' })));
    const ivs = new Set(encoded.map((p) => Buffer.from(p.data!).subarray(1, 13).toString('hex')));
    const datas = new Set(encoded.map((p) => Buffer.from(p.data!).toString('hex')));
    expect(ivs.size).toBe(50);
    expect(datas.size).toBe(50);
    expect(
      encoded.every(
        (p) =>
          p.data![0] === 1 &&
          p.data!.length === 1 + 12 + 16 + Buffer.byteLength(JSON.stringify(canonical(json({ same: 'value' })))),
      ),
    ).toBe(true);
  });

  it('keeps the order and length of a batch, including an empty batch', async () => {
    const batch = [json(1), json('two'), json({ three: 3 })];
    expect((await codec.decode(await codec.encode(batch))).map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      1,
      'two',
      { three: 3 },
    ]);
    expect(await codec.encode([])).toEqual([]);
    expect(await codec.decode([])).toEqual([]);
  });
});

describe('AesGcmCodec: decode refuses what it must not trust', () => {
  const codec = new AesGcmCodec({ key: KEY, keyId: 'k1', previousKeys: { k0: OTHER_KEY } });
  let good: Payload;
  beforeAll(async () => {
    [good] = (await codec.encode([json({ secret: 'value' })])) as [Payload];
  });
  const withData = (f: (d: Buffer) => Buffer) => ({ ...good, data: f(Buffer.from(good.data!)) });
  const flip = (i: (len: number) => number) => (d: Buffer) => {
    const copy = Buffer.from(d);
    const at = i(copy.length);
    copy[at] = copy[at]! ^ 0x01;
    return copy;
  };
  const withMeta = (k: string, v: string | undefined) => {
    const metadata = { ...good.metadata };
    if (v === undefined) delete metadata[k];
    else metadata[k] = Buffer.from(v);
    return { ...good, metadata };
  };

  const CASES: Array<{ name: string; make: () => Payload; error: RegExp }> = [
    {
      name: 'a flipped bit in the IV',
      make: () => withData(flip(() => 3)),
      error: /failed authentication with key id "k1": it was tampered with/,
    },
    {
      name: 'a flipped bit in the ciphertext',
      make: () => withData(flip((n) => 20 % (n - 16))),
      error: /failed authentication/,
    },
    { name: 'a flipped bit in the tag', make: () => withData(flip((n) => n - 1)), error: /failed authentication/ },
    {
      name: 'a byte appended',
      make: () => withData((d) => Buffer.concat([d, Buffer.from([0])])),
      error: /failed authentication/,
    },
    {
      name: 'the tag cut off',
      make: () => withData((d) => d.subarray(0, d.length - 16)),
      error: /failed authentication|truncated/,
    },
    { name: 'truncated below IV + tag', make: () => withData((d) => d.subarray(0, 20)), error: /truncated/ },
    { name: 'empty data', make: () => withData(() => Buffer.alloc(0)), error: /truncated/ },
    {
      name: 'an unknown format version',
      make: () => withData((d) => Buffer.concat([Buffer.from([2]), d.subarray(1)])),
      error: /unknown format version 2/,
    },
    {
      name: 'the key id swapped for another known key (AAD binds it)',
      make: () => withMeta(METADATA_ENCRYPTION_KEY_ID, 'k0'),
      error: /failed authentication with key id "k0"/,
    },
    {
      name: 'an unknown key id',
      make: () => withMeta(METADATA_ENCRYPTION_KEY_ID, 'k9'),
      error: /key id "k9", which this codec does not have \(it has: "k0", "k1"\)/,
    },
    {
      name: 'no key id',
      make: () => withMeta(METADATA_ENCRYPTION_KEY_ID, undefined),
      error: /has no "encryption-key-id" metadata/,
    },
  ];
  it.each(CASES)('$name', async ({ make, error }) => {
    const err = await codec.decode([make()]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CodecError);
    expect((err as Error).message).toMatch(error);
    expect((err as Error).message).not.toContain('value');
  });

  it('the untouched payload still decodes (the cases above fail for their change, not by accident)', async () => {
    const [decoded] = await codec.decode([good]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ secret: 'value' });
  });
});

describe('AesGcmCodec: keys and key ids', () => {
  it('a different key under the same id fails authentication; under its own id it is unknown', async () => {
    const [encoded] = await new AesGcmCodec({ key: KEY, keyId: 'prod' }).encode([json('x')]);
    await expect(new AesGcmCodec({ key: OTHER_KEY, keyId: 'prod' }).decode([encoded!])).rejects.toThrow(
      /failed authentication with key id "prod"/,
    );
    await expect(new AesGcmCodec({ key: OTHER_KEY }).decode([encoded!])).rejects.toThrow(
      /key id "prod", which this codec does not have/,
    );
  });

  it('derives a stable, non-secret key id from the key when none is given', async () => {
    const a = new AesGcmCodec({ key: KEY });
    expect(a.keyId).toBe(defaultKeyId(KEY));
    expect(a.keyId).toMatch(/^sha256-[0-9a-f]{16}$/);
    expect(new AesGcmCodec({ key: Buffer.from(KEY) }).keyId).toBe(a.keyId);
    expect(new AesGcmCodec({ key: OTHER_KEY }).keyId).not.toBe(a.keyId);
    expect(a.keyId).not.toContain(KEY.toString('hex').slice(0, 8));
    const [encoded] = await a.encode([json(1)]);
    expect(meta(encoded!, METADATA_ENCRYPTION_KEY_ID)).toBe(a.keyId);
  });

  it('rotation: a codec with the old key as a previous key decodes old payloads and encodes with the new id', async () => {
    const old = new AesGcmCodec({ key: OTHER_KEY, keyId: '2024' });
    const rotated = new AesGcmCodec({ key: KEY, keyId: '2025', previousKeys: { '2024': OTHER_KEY } });
    const [fromOld] = await old.encode([json('before')]);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([fromOld!]))[0]!)).toBe('before');
    const [fromNew] = await rotated.encode([json('after')]);
    expect(meta(fromNew!, METADATA_ENCRYPTION_KEY_ID)).toBe('2025');
    await expect(old.decode([fromNew!])).rejects.toThrow(/key id "2025"/);
  });

  it('rejects keys that are not 32 bytes and an empty key id', () => {
    expect(() => new AesGcmCodec({ key: Buffer.alloc(16) })).toThrow(/must be 32 bytes/);
    expect(() => new AesGcmCodec({ key: KEY, previousKeys: { old: Buffer.alloc(31) } })).toThrow(
      /key "old" must be 32 bytes/,
    );
    expect(() => new AesGcmCodec({ key: KEY, keyId: '' })).toThrow(/must not be empty/);
  });
});

describe('AesGcmCodec: payloads that are not encrypted pass through decode unchanged', () => {
  const codec = new AesGcmCodec({ key: KEY });
  const CASES: Array<{ name: string; payload: Payload }> = [
    { name: 'json/plain', payload: json({ plain: true }) },
    { name: 'binary/null', payload: json(null) },
    { name: 'binary/plain', payload: json(new Uint8Array([1, 2, 3])) },
    { name: 'no metadata at all', payload: { data: Buffer.from('raw') } },
    {
      name: "another codec's encoding",
      payload: { metadata: { encoding: Buffer.from('binary/zlib') }, data: Buffer.from([1, 2]) },
    },
  ];
  it.each(CASES)('$name', async ({ payload }) => {
    const [decoded] = await codec.decode([payload]);
    expect(decoded).toBe(payload);
  });

  it('mixed batches decode the encrypted members and pass the rest', async () => {
    const [enc] = await codec.encode([json('secret')]);
    const decoded = await codec.decode([json('plain'), enc!, json(3)]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['plain', 'secret', 3]);
  });
});

describe('BACKFILL_CODEC_KEY parsing and configuration', () => {
  const good = KEY.toString('base64');
  const CASES: Array<{ name: string; text: string; ok: boolean }> = [
    { name: '32 bytes of base64', text: good, ok: true },
    { name: 'with surrounding whitespace and newline', text: ` ${good}\n`, ok: true },
    { name: '16 bytes', text: Buffer.alloc(16, 1).toString('base64'), ok: false },
    { name: '33 bytes', text: Buffer.alloc(33, 1).toString('base64'), ok: false },
    { name: 'hex instead of base64 (64 chars decode to 48 bytes)', text: KEY.toString('hex'), ok: false },
    { name: 'not base64 at all', text: 'not a key!', ok: false },
    { name: 'non-canonical padding bits', text: good.slice(0, 42) + 'B=', ok: false },
    { name: 'base64url alphabet', text: Buffer.alloc(32, 0xfb).toString('base64url'), ok: false },
  ];
  it.each(CASES)('$name', ({ text, ok }) => {
    const parsed = parseCodecKey(text);
    if (ok) expect('key' in parsed && parsed.key.equals(KEY)).toBe(true);
    else {
      expect('error' in parsed).toBe(true);
      expect((parsed as { error: string }).error).not.toContain(text.trim());
    }
  });

  const baseEnv = { CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's' };
  it('the env schema rejects a bad key with a clear message that does not echo it', () => {
    const bad = Buffer.alloc(20, 3).toString('base64');
    let err: unknown;
    try {
      loadConfig({ ...baseEnv, BACKFILL_CODEC_KEY: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/BACKFILL_CODEC_KEY must be the base64 of exactly 32 bytes \(got 20\)/);
    expect((err as Error).message).not.toContain(bad);
    expect(() => loadConfig({ ...baseEnv, BACKFILL_CODEC_KEY: good, BACKFILL_CODEC_KEY_ID: 'has space' })).toThrow(
      /BACKFILL_CODEC_KEY_ID must be 1 to 128 printable ASCII/,
    );
  });

  it('no key (absent or empty) means no codec; a key makes one, with the configured id', () => {
    expect(codecFromEnvValues(loadConfig(baseEnv))).toBeUndefined();
    expect(codecFromEnvValues(loadConfig({ ...baseEnv, BACKFILL_CODEC_KEY: '' }))).toBeUndefined();
    const config = loadConfig({ ...baseEnv, BACKFILL_CODEC_KEY: good, BACKFILL_CODEC_KEY_ID: 'ops-2025' });
    expect(codecFromEnvValues(config)?.keyId).toBe('ops-2025');
    const described = JSON.stringify(describeConfig(config));
    expect(described).toContain('ops-2025');
    expect(described).not.toContain(good);
    expect(JSON.stringify(describeConfig(loadConfig(baseEnv)))).toContain('(off');
  });
});

describe('codec server over HTTP (Temporal remote codec protocol)', () => {
  const codec = new AesGcmCodec({ key: KEY, keyId: 'srv' });
  let server: CodecServer;
  const UI = 'http://localhost:8233';
  beforeAll(async () => {
    server = await startCodecServer({ codec, allowedOrigins: [UI] });
  });
  afterAll(async () => {
    await server?.close();
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('binds 127.0.0.1 by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a payload encoded by the codec decodes through /decode to the original JSON', async () => {
    const value = { source: { type: 'csv', path: '/srv/members.csv' }, batchSize: 5 };
    const encoded = await codec.encode([json(value), json('second')]);
    const res = await post('/decode', { payloads: encoded.map(payloadToJson) }, { 'x-namespace': 'default' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as { payloads: JsonPayload[] };
    expect(body.payloads).toHaveLength(2);
    expect(Buffer.from(body.payloads[0]!.metadata!.encoding!, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(body.payloads[0]!.data!, 'base64').toString('utf8'))).toEqual(value);
    expect(JSON.parse(Buffer.from(body.payloads[1]!.data!, 'base64').toString('utf8'))).toBe('second');
  });

  it('/encode output is encrypted and decodes with the codec itself; mounted at any depth', async () => {
    const res = await post('/default/encode', { payloads: [payloadToJson(json({ hello: 'world' }))] });
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
    expect(Buffer.from(payloads[0]!.metadata!.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(payloads[0]!.data!, 'base64').toString('latin1')).not.toContain('world');
    const back = await post('/default/decode/', { payloads });
    const decoded = (await back.json()) as { payloads: JsonPayload[] };
    expect(JSON.parse(Buffer.from(decoded.payloads[0]!.data!, 'base64').toString())).toEqual({ hello: 'world' });
  });

  it('an empty Payloads message ({}) answers an empty list', async () => {
    const res = await post('/decode', {});
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ payloads: [] });
  });

  it('CORS: preflight and responses for the configured UI origin', async () => {
    const pre = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI);
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    const [enc] = await codec.encode([json(1)]);
    const res = await post('/decode', { payloads: [payloadToJson(enc!)] }, { origin: UI });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
  });

  it('CORS: another origin gets no CORS headers and cannot use the decoder', async () => {
    const evil = 'http://evil.example:8233';
    const pre = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: evil, 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const [enc] = await codec.encode([json('secret-value')]);
    const res = await post('/decode', { payloads: [payloadToJson(enc!)] }, { origin: evil });
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('secret-value');
  });

  const ERRORS: Array<{ name: string; path: string; method?: string; body?: unknown; status: number; text: RegExp }> = [
    { name: 'invalid JSON', path: '/decode', body: '{"payloads": [', status: 400, text: /not valid JSON/ },
    { name: 'payloads not an array', path: '/decode', body: { payloads: 'x' }, status: 400, text: /must be an array/ },
    {
      name: 'a payload that is not an object',
      path: '/decode',
      body: { payloads: [1] },
      status: 400,
      text: /payloads\[0\] must be an object/,
    },
    {
      name: 'data that is not base64',
      path: '/decode',
      body: { payloads: [{ metadata: {}, data: '!!!' }] },
      status: 400,
      text: /not valid base64/,
    },
    {
      name: 'unknown key id',
      path: '/decode',
      body: {
        payloads: [
          {
            metadata: {
              encoding: Buffer.from(ENCRYPTED_ENCODING).toString('base64'),
              'encryption-key-id': Buffer.from('nope').toString('base64'),
            },
            data: Buffer.alloc(40).toString('base64'),
          },
        ],
      },
      status: 400,
      text: /key id "nope"/,
    },
    { name: 'tampered data', path: '/decode', body: 'TAMPERED', status: 400, text: /failed authentication/ },
    { name: 'unknown path', path: '/transmogrify', body: { payloads: [] }, status: 404, text: /not found/ },
    { name: 'GET on /decode', path: '/decode', method: 'GET', status: 405, text: /use POST/ },
  ];
  it.each(ERRORS)('$name -> $status', async ({ path, method, body, status, text }) => {
    let sent = body;
    if (body === 'TAMPERED') {
      const [enc] = await codec.encode([json('x')]);
      const j = payloadToJson(enc!);
      const d = Buffer.from(j.data!, 'base64');
      d[d.length - 1] = d[d.length - 1]! ^ 0xff;
      sent = { payloads: [{ ...j, data: d.toString('base64') }] };
    }
    const res = method === 'GET' ? await fetch(`${server.url}${path}`) : await post(path, sent);
    expect(res.status).toBe(status);
    expect(await res.text()).toMatch(text);
  });
});
