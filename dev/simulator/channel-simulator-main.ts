// Runs the Channel Talk simulator on its own, for the demo or manual runs:
//   CHANNEL_ACCESS_KEY=k CHANNEL_ACCESS_SECRET=s tsx dev/simulator/channel-simulator-main.ts \
//     --data examples/channel-users.json --port 8081 [--rate 10] [--burst 10] [--no-retry-after]
// Prints the URL it listens on (never the credentials or user data).
import { parseArgs } from 'node:util';
import { loadChannelUsers, startChannelSimulator } from './channel-simulator';

function numberArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      port: { type: 'string', default: '0' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      'no-retry-after': { type: 'boolean', default: false },
    },
  });
  const accessKey = process.env.CHANNEL_ACCESS_KEY;
  const accessSecret = process.env.CHANNEL_ACCESS_SECRET;
  if (!values.data) throw new Error('--data <file with {"users":[...]}> is required');
  if (!accessKey || !accessSecret) throw new Error('set CHANNEL_ACCESS_KEY and CHANNEL_ACCESS_SECRET');

  const users = await loadChannelUsers(values.data);
  const rate = numberArg(values.rate, 'rate');
  const simulator = await startChannelSimulator({
    users,
    accessKey,
    accessSecret,
    port: numberArg(values.port, 'port'),
    rateLimit: rate ? { perSecond: rate, burst: numberArg(values.burst, 'burst') } : undefined,
    retryAfter: !values['no-retry-after'],
  });
  console.log(
    `Channel Talk simulator listening on ${simulator.url} (${users.length} users${rate ? `, ${rate}/s` : ''})`,
  );

  const stop = () => {
    const s = simulator.stats();
    console.log(`stopping: ${s.requests} requests, ${s.ok} ok, ${s.notFound} not found, ${s.rateLimited} rate limited`);
    simulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
