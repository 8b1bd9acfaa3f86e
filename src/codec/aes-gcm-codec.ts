// An optional Temporal PayloadCodec that encrypts every payload (workflow and activity inputs and results,
// signal arguments, query answers, heartbeat details, memos) with AES-256-GCM before it leaves the process.
// The backfill is designed so that no secret or personal data reaches a history in the first place
// (activities return decisions, field names, counts, line numbers and memberIds); the codec protects the
// rest (source paths, memberIds, run labels) from anyone who can read the Temporal server's storage.
//
// Wire format of an encrypted payload:
//   metadata.encoding          = "binary/encrypted"
//   metadata.encryption-key-id = the key id (UTF-8)
//   data = 0x01 (format version) || IV (12 random bytes, new for every payload) || ciphertext || GCM tag (16 bytes)
// The plaintext is the original payload as Temporal's JSON form, {"metadata":{k: base64},"data": base64}, and
// the key id is bound to the ciphertext as GCM additional authenticated data, so neither the data nor the key
// id can be changed without decoding failing.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_ENCRYPTION_KEY_ID = 'encryption-key-id';
const FORMAT_VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** Decoding refused: unknown key id, tampered or truncated data, or a wrong key. Never carries payload content. */
export class CodecError extends Error {
  override name = 'CodecError';
}

/** Temporal's JSON form of a payload (the codec-server protocol uses the same shape). */
export interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

export function payloadToJson(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload.metadata ?? {})) {
    if (v) metadata[k] = Buffer.from(v).toString('base64');
  }
  return { metadata, data: payload.data ? Buffer.from(payload.data).toString('base64') : '' };
}

export function jsonToPayload(json: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(json.metadata ?? {})) {
    if (typeof v !== 'string') throw new CodecError(`payload metadata "${k}" is not a base64 string`);
    metadata[k] = strictBase64(v, `payload metadata "${k}"`);
  }
  if (json.data !== undefined && json.data !== null && typeof json.data !== 'string')
    throw new CodecError('payload data is not a base64 string');
  return { metadata, data: json.data ? strictBase64(json.data, 'payload data') : new Uint8Array(0) };
}

/** Node's base64 decoder silently skips junk; the codec server must answer 400 for it instead. */
function strictBase64(s: string, what: string): Uint8Array {
  const compact = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact)) throw new CodecError(`${what} is not valid base64`);
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

/**
 * Parses a key given as base64 text. Returns the reason instead of throwing, so the zod env schema can
 * report it; the reason names what is wrong, never the value.
 */
export function parseCodecKey(text: string): { key: Buffer } | { error: string } {
  const compact = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact))
    return { error: 'must be base64 (e.g. the output of `openssl rand -base64 32`)' };
  const key = Buffer.from(compact, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== compact) {
    return {
      error: `must be the base64 of exactly ${KEY_BYTES} bytes (got ${key.length}); make one with \`openssl rand -base64 32\``,
    };
  }
  return { key };
}

/** A stable, non-secret name for a key: lets an operator see which key a payload needs without revealing it. */
export function defaultKeyId(key: Uint8Array): string {
  return `sha256-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export interface AesGcmCodecOptions {
  /** Encrypts with this key (32 bytes). */
  key: Uint8Array;
  /** Written to `encryption-key-id`; default derived from the key (see defaultKeyId). */
  keyId?: string;
  /** Older keys, by id, that decode still accepts (key rotation). */
  previousKeys?: Record<string, Uint8Array>;
}

export class AesGcmCodec implements PayloadCodec {
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(o: AesGcmCodecOptions) {
    this.keyId = o.keyId ?? defaultKeyId(o.key);
    if (this.keyId === '') throw new CodecError('the key id must not be empty');
    for (const [id, key] of [...Object.entries(o.previousKeys ?? {}), [this.keyId, o.key] as const]) {
      if (key.length !== KEY_BYTES)
        throw new CodecError(`key "${id}" must be ${KEY_BYTES} bytes for AES-256-GCM, got ${key.length}`);
      this.keys.set(id, Buffer.from(key));
    }
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.keyId)!;
    const aad = Buffer.from(this.keyId, 'utf8');
    return payloads.map((payload) => {
      const plaintext = Buffer.from(JSON.stringify(payloadToJson(payload)), 'utf8');
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING, 'utf8'),
          [METADATA_ENCRYPTION_KEY_ID]: aad,
        },
        data: Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, ciphertext, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decodeOne(payload));
  }

  private decodeOne(payload: Payload): Payload {
    const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
    // Payloads written before the codec was switched on (or by a worker without it) pass through.
    if (!encoding || Buffer.from(encoding).toString('utf8') !== ENCRYPTED_ENCODING) return payload;
    const idBytes = payload.metadata?.[METADATA_ENCRYPTION_KEY_ID];
    if (!idBytes || idBytes.length === 0)
      throw new CodecError(`encrypted payload has no "${METADATA_ENCRYPTION_KEY_ID}" metadata`);
    const keyId = Buffer.from(idBytes).toString('utf8');
    const key = this.keys.get(keyId);
    if (!key) {
      throw new CodecError(
        `payload was encrypted with key id "${keyId}", which this codec does not have (it has: ${[...this.keys.keys()].map((k) => `"${k}"`).join(', ')})`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array(0));
    if (data.length < 1 + IV_BYTES + TAG_BYTES) throw new CodecError('encrypted payload is truncated');
    if (data[0] !== FORMAT_VERSION) throw new CodecError(`encrypted payload has unknown format version ${data[0]}`);
    const iv = data.subarray(1, 1 + IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const ciphertext = data.subarray(1 + IV_BYTES, data.length - TAG_BYTES);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(keyId, 'utf8'));
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      throw new CodecError(
        `encrypted payload failed authentication with key id "${keyId}": it was tampered with, or encrypted with a different key under the same id`,
      );
    }
    let json: JsonPayload;
    try {
      json = JSON.parse(plaintext.toString('utf8')) as JsonPayload;
    } catch {
      throw new CodecError('decrypted payload is not a JSON payload envelope');
    }
    return jsonToPayload(json);
  }
}

/** The codec configured by BACKFILL_CODEC_KEY (and BACKFILL_CODEC_KEY_ID), or undefined when the key is not set. */
export function codecFromEnvValues(values: {
  BACKFILL_CODEC_KEY?: string;
  BACKFILL_CODEC_KEY_ID?: string;
}): AesGcmCodec | undefined {
  if (!values.BACKFILL_CODEC_KEY) return undefined;
  const parsed = parseCodecKey(values.BACKFILL_CODEC_KEY);
  if ('error' in parsed) throw new CodecError(`BACKFILL_CODEC_KEY ${parsed.error}`);
  return new AesGcmCodec({ key: parsed.key, keyId: values.BACKFILL_CODEC_KEY_ID || undefined });
}
