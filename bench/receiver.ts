// A lean webhook endpoint for the benchmark. dev/simulator/webhook-receiver.ts keeps every delivery whole
// (parsed body, raw body, headers): at a million members that is gigabytes in the harness process, and the
// garbage collector's work on it would steal CPU from the worker being measured on a 2-core machine. This one
// does what a real endpoint does with each request (read it, parse the JSON, check the token, answer 200)
// and keeps only what checkSyntheticRun reads: memberId, event, webhook-id, status.
import { StringDecoder } from 'node:string_decoder';
import { closeSync, createWriteStream, openSync, readSync, type WriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeliveryRecord } from '../dev/synthetic';

export interface LeanReceiver {
  url: string;
  /** What was recorded since the last reset(); with a spool file, call flush() first. */
  deliveries(): Iterable<DeliveryRecord>;
  /** Deliveries recorded since the last reset(). */
  count(): number;
  /** Resolves once every delivery recorded so far is in the spool file (at once without one). */
  flush(): Promise<void>;
  /** Epoch ms of each accepted delivery, ascending. */
  acceptedTimes(): number[];
  /** Forget what was recorded (between the project run and the plain script). */
  reset(): void;
  close(): Promise<void>;
}

/**
 * `spool`: where to append the deliveries (files `<spool>.<n>.jsonl`, one JSON line each) instead of keeping them in memory, for runs of
 * millions of members (bench/run.ts uses it above a million), so the harness's heap stays small.
 */
export async function startLeanReceiver(o: { token: string; spool?: string }): Promise<LeanReceiver> {
  const recorder = o.spool ? spoolRecorder(o.spool) : memoryRecorder();
  let times: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver.invalid');
      let status = 200;
      let memberId: string | null = null;
      let event = '';
      if (url.pathname !== '/webhook' || req.method !== 'POST') status = 404;
      else if (url.searchParams.get('token') !== o.token) status = 401;
      else {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            event?: unknown;
            entity?: { memberId?: unknown };
          };
          event = typeof body.event === 'string' ? body.event : '';
          memberId = typeof body.entity?.memberId === 'string' ? body.entity.memberId : null;
        } catch {
          status = 400;
        }
      }
      const webhookId = req.headers['webhook-id'];
      recorder.record({ memberId, event, webhookId: typeof webhookId === 'string' ? webhookId : null, status });
      if (status === 200) times.push(Date.now());
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(status === 200 ? '{"ok":true}' : '{"ok":false}');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    deliveries: () => recorder.deliveries(),
    count: () => recorder.count(),
    flush: () => recorder.flush(),
    acceptedTimes: () => times,
    reset() {
      recorder.reset();
      times = [];
    },
    async close() {
      await recorder.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

interface Recorder {
  record(d: DeliveryRecord): void;
  deliveries(): Iterable<DeliveryRecord>;
  count(): number;
  flush(): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

function memoryRecorder(): Recorder {
  let recorded: DeliveryRecord[] = [];
  return {
    record: (d) => void recorded.push(d),
    deliveries: () => recorded,
    count: () => recorded.length,
    flush: () => Promise.resolve(),
    reset: () => void (recorded = []),
    close: () => Promise.resolve(),
  };
}

function spoolRecorder(prefix: string): Recorder {
  // One file per reset(): what an earlier stream still holds can never land in the next run's file.
  let generation = 0;
  const file = () => `${prefix}.${generation}.jsonl`;
  let out: WriteStream = createWriteStream(file());
  let count = 0;
  const ended = (stream: WriteStream) => new Promise<void>((resolve) => stream.end(resolve));
  return {
    record(d) {
      count += 1;
      out.write(JSON.stringify(d) + '\n'); // buffered; the endpoint is the only writer
    },
    deliveries: () => readJsonLines<DeliveryRecord>(file()),
    count: () => count,
    // A write stream has no flush: end it (its data reaches the file) and go on appending with a new one.
    async flush() {
      await ended(out);
      out = createWriteStream(file(), { flags: 'a' });
    },
    reset() {
      void ended(out);
      generation += 1;
      out = createWriteStream(file());
      count = 0;
    },
    close: () => ended(out),
  };
}

/** The lines of a JSON-lines file, parsed one at a time (a file of millions of lines never sits in memory). */
function* readJsonLines<T>(file: string): Generator<T> {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    let partial = '';
    // A chunk may end inside a character: decoded alone it became replacement characters.
    const decoder = new StringDecoder('utf8');
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) {
      const lines = (partial + decoder.write(buffer.subarray(0, n))).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') yield JSON.parse(line) as T;
    }
  } finally {
    closeSync(fd);
  }
}
