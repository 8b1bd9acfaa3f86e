// A lean webhook endpoint for the benchmark. dev/simulator/webhook-receiver.ts keeps every delivery whole
// (parsed body, raw body, headers): at a million members that is gigabytes in the harness process, and the
// garbage collector's work on it would steal CPU from the worker being measured on a 2-core machine. This one
// does what a real endpoint does with each request (read it, parse the JSON, check the token, answer 200)
// and keeps only what checkSyntheticRun reads: memberId, event, webhook-id, status.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeliveryRecord } from '../dev/synthetic';

export interface LeanReceiver {
  url: string;
  deliveries(): DeliveryRecord[];
  /** Epoch ms of each accepted delivery, ascending. */
  acceptedTimes(): number[];
  /** Forget what was recorded (between the project run and the plain script). */
  reset(): void;
  close(): Promise<void>;
}

export async function startLeanReceiver(o: { token: string }): Promise<LeanReceiver> {
  let recorded: DeliveryRecord[] = [];
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
      recorded.push({ memberId, event, webhookId: typeof webhookId === 'string' ? webhookId : null, status });
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
    deliveries: () => recorded,
    acceptedTimes: () => times,
    reset() {
      recorded = [];
      times = [];
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
