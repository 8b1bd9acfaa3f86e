// Secured endpoints in front of the plain Temporal dev server, for tests of how the worker and the CLI connect:
// certificates made by `openssl`, a mutual-TLS front (Node `tls`, bytes piped to the dev server) and an
// API-key front (Node `http2` over TLS, gRPC forwarded request by request, so it can see the headers).
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Client certificates by common name, each signed by the CA. */
  clients: Record<string, { cert: string; key: string }>;
}

/**
 * A CA, a server certificate for `localhost` and `127.0.0.1`, and one client certificate per common name,
 * made by `openssl` in `dir` (P-256 keys: quick to make). Returns the file paths.
 */
export async function makeTestCerts(dir: string, clientNames: string[]): Promise<TestCerts> {
  await mkdir(dir, { recursive: true });
  const p = (name: string) => path.join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=webhook-backfill test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const sign = async (name: string, cn: string, ext: string) => {
    await run('openssl', [
      'req',
      ...newKey,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    ]);
    await writeFile(p(`${name}.ext`), ext);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      p(`${name}.pem`),
      '-extfile',
      p(`${name}.ext`),
    ]);
  };
  const leaf = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
  await sign('server', 'localhost', `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n`);
  const clients: TestCerts['clients'] = {};
  for (const cn of clientNames) {
    await sign(`client-${cn}`, cn, `${leaf}extendedKeyUsage=clientAuth\n`);
    clients[cn] = { cert: p(`client-${cn}.pem`), key: p(`client-${cn}.key`) };
  }
  return { dir, caCert: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clients };
}

export interface MtlsFront {
  address: string;
  /** Common names of the client certificates of the connections accepted, in order. */
  readonly accepted: readonly string[];
  /** Handshakes refused (no certificate, or one the CA did not sign). */
  readonly refused: number;
  close(): Promise<void>;
}

/** A TLS server on 127.0.0.1 that requires a client certificate signed by the CA, offers ALPN h2 and pipes bytes to `targetPort`. */
export async function startMtlsFront(certs: TestCerts, targetPort: number): Promise<MtlsFront> {
  const [key, cert, ca] = await Promise.all([
    readFile(certs.serverKey),
    readFile(certs.serverCert),
    readFile(certs.caCert),
  ]);
  const accepted: string[] = [];
  let refused = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    { key, cert, ca, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
    (socket) => {
      accepted.push(String(socket.getPeerCertificate().subject?.CN ?? '?'));
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      }
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
    },
  );
  server.on('tlsClientError', () => (refused += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    accepted,
    get refused() {
      return refused;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface SeenRequest {
  path: string;
  authorization: string | undefined;
  userAgent: string | undefined;
}

export interface ApiKeyFront {
  address: string;
  /** Every gRPC request forwarded, with the authorization header it carried. */
  readonly requests: readonly SeenRequest[];
  close(): Promise<void>;
}

// Hop-by-hop and pseudo headers are set by Node for each side; `authorization` stops here (the dev server needs none).
const NOT_FORWARDED = new Set(['authorization', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']);

/**
 * An HTTP/2 server over TLS (the test CA's server certificate, no client certificate) that forwards each gRPC
 * call to the dev server over plain HTTP/2 and records the `authorization` header of every call, as a
 * Temporal Cloud endpoint would check it.
 */
export async function startApiKeyFront(certs: TestCerts, targetPort: number): Promise<ApiKeyFront> {
  const [key, cert] = await Promise.all([readFile(certs.serverKey), readFile(certs.serverCert)]);
  const requests: SeenRequest[] = [];
  const upstream = http2.connect(`http://127.0.0.1:${targetPort}`);
  upstream.on('error', () => undefined);
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ key, cert, ALPNProtocols: ['h2'] });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);
    requests.push({
      path: String(headers[':path']),
      authorization: one(headers.authorization),
      userAgent: one(headers['user-agent']),
    });
    const forward: http2.OutgoingHttpHeaders = { ':method': headers[':method'], ':path': headers[':path'] };
    for (const [name, value] of Object.entries(headers))
      if (!name.startsWith(':') && !NOT_FORWARDED.has(name)) forward[name] = value;
    const call = upstream.request(forward);
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on('response', (head, flags) => {
      const { ':status': status, ...rest } = head;
      const reply = { ':status': status, ...rest };
      // A "trailers-only" gRPC answer (an error): the status is in these headers and the stream ends with them.
      if (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) stream.respond(reply, { endStream: true });
      else {
        stream.respond(reply, { waitForTrailers: true });
        call.pipe(stream);
      }
    });
    call.on('trailers', (t) => (trailers = t));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.pipe(call);
    // A call cancelled on either side (the worker's long polls at shutdown) is cancelled on the other.
    stream.on('close', () => {
      if (!call.closed) call.close(http2.constants.NGHTTP2_CANCEL);
    });
    call.on('close', () => {
      if (!stream.closed && !stream.headersSent) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    call.on('error', () => undefined);
    stream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    requests,
    async close() {
      for (const s of sessions) s.destroy();
      upstream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
