/**
 * Demo CLI: `tsx dev/simulator/webhook-receiver-main.ts --port 8082 [--path /webhook] [--status 503 --times 2]`.
 * Prints one line per delivery without personal data or the token: only event, memberId and webhook-id.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startWebhookReceiver, type Delivery } from './webhook-receiver';

const argsSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(8082),
  path: z.string().startsWith('/').default('/webhook'),
  status: z.coerce.number().int().min(100).max(599).optional(),
  times: z.coerce.number().int().positive().optional(),
  delayMs: z.coerce.number().int().nonnegative().optional(),
});

function formatDelivery(d: Delivery): string {
  return [
    `#${d.seq}`,
    new Date(d.receivedAt).toISOString(),
    `status=${d.status}`,
    `event=${d.event || '-'}`,
    `memberId=${d.memberId ?? '-'}`,
    `webhook-id=${d.webhookId ?? '-'}`,
    `token=${d.token === null ? 'absent' : 'present'}`,
  ].join(' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      path: { type: 'string' },
      status: { type: 'string' },
      times: { type: 'string' },
      'delay-ms': { type: 'string' },
    },
  });
  const args = argsSchema.parse({ ...values, delayMs: values['delay-ms'] });
  const receiver = await startWebhookReceiver({
    port: args.port,
    path: args.path,
    defaultBehaviour:
      args.status === undefined ? undefined : { status: args.status, times: args.times, delayMs: args.delayMs },
    onDelivery: (d) => console.log(formatDelivery(d)),
  });
  console.log(`webhook receiver listening on ${receiver.url}`);
  const shutdown = (): void => {
    receiver.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
