// A codec server: lets the Temporal Web UI and CLI (`--codec-endpoint`) show an operator the decrypted
// payloads of a backfill that runs with BACKFILL_CODEC_KEY, without the key ever leaving this process.
//
// Protocol (Temporal's remote codec protocol, as in temporalio/samples-go codec-server/protocol.md and the Go
// SDK's converter.NewPayloadCodecHTTPHandler):
//   POST <anything>/encode and POST <anything>/decode (only the last path segment counts, so the server can be
//   mounted at any depth, e.g. /default/decode), Content-Type: application/json,
//   body = Payloads protobuf as JSON: {"payloads":[{"metadata":{"encoding":"<base64>",...},"data":"<base64>"}]}
//   200 -> the same shape with the payloads encoded or decoded; 400 -> invalid JSON or a codec error.
//   The UI and CLI send X-Namespace; one key serves every namespace here.
// The Web UI calls it from the browser, so it answers CORS preflights for the configured UI origins only.
// It binds 127.0.0.1 unless told otherwise: anyone who can reach it can decrypt.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PayloadCodec } from '@temporalio/common';
import { CodecError, jsonToPayload, payloadToJson, type JsonPayload } from './aes-gcm-codec';

export const DEFAULT_UI_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Default 0 (any free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Browser origins allowed to call (the Web UI's address, e.g. http://localhost:8233). Default DEFAULT_UI_ORIGINS. */
  allowedOrigins?: string[];
  /** One line per request that failed (never payload content). Default: nothing. */
  log?: (line: string) => void;
}

export interface CodecServer {
  /** http://HOST:PORT */
  url: string;
  port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  const host = o.host ?? '127.0.0.1';
  const origins = new Set((o.allowedOrigins ?? DEFAULT_UI_ORIGINS).map(normaliseOrigin));
  const log = o.log ?? (() => undefined);

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : 'internal error';
      if (status >= 500)
        log(`codec server: ${req.method} ${pathOf(req)} failed: ${err instanceof Error ? err.name : 'error'}`);
      else log(`codec server: ${req.method} ${pathOf(req)} -> ${status} ${message}`);
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${message}\n`);
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    const allowedOrigin = origin !== undefined && origins.has(normaliseOrigin(origin));
    if (allowedOrigin) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      if (!allowedOrigin)
        throw new HttpError(
          403,
          `origin ${origin ?? '(none)'} is not allowed; start the codec server with --origin for your Web UI`,
        );
      res.writeHead(204, {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'Authorization, Content-Type, X-Namespace',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    // A page from another origin must not be able to use the decoder, even with a "simple" request.
    if (origin !== undefined && !allowedOrigin) throw new HttpError(403, `origin ${origin} is not allowed`);

    const path = pathOf(req);
    if (req.method === 'GET' && (path === '/health' || path === '/')) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('webhook-backfill codec server: POST /encode, POST /decode\n');
      return;
    }
    const op = path.endsWith('/encode') ? 'encode' : path.endsWith('/decode') ? 'decode' : undefined;
    if (!op) throw new HttpError(404, 'not found: POST /encode or /decode');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST, OPTIONS');
      throw new HttpError(405, 'method not allowed: use POST');
    }

    const payloads = parseBody(await readBody(req));
    let out;
    try {
      out = op === 'encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
    } catch (err) {
      if (err instanceof CodecError) throw new HttpError(400, err.message);
      throw err;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ payloads: out.map(payloadToJson) }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function pathOf(req: http.IncomingMessage): string {
  const raw = (req.url ?? '/').split('?')[0] ?? '/';
  return raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
}

function normaliseOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string) {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'body must be a JSON object {"payloads":[...]}');
  const list = (body as { payloads?: unknown }).payloads ?? []; // protobuf JSON omits an empty repeated field
  if (!Array.isArray(list)) throw new HttpError(400, '"payloads" must be an array');
  return list.map((p, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      throw new HttpError(400, `payloads[${i}] must be an object`);
    try {
      return jsonToPayload(p as JsonPayload);
    } catch (err) {
      if (err instanceof CodecError) throw new HttpError(400, `payloads[${i}]: ${err.message}`);
      throw err;
    }
  });
}
