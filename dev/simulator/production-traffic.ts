// The customer's own production code calling the same Channel Talk channel as a repair (its app, CRM sync, chat
// integrations): a second client with its own credentials of the channel, driven by a test or the bench, that
// counts what it was answered. Steady calls on a schedule (a late timer catches up instead of losing calls) plus
// bursts fired all at once.
import { Agent, request } from 'undici';

export interface ProductionTrafficOptions {
  /** The simulator (or API) base URL. */
  url: string;
  accessKey: string;
  accessSecret: string;
  /** Steady calls per second. */
  perSecond: number;
  /** Calls fired at once every `burstEveryMs` (0: none). */
  burst?: number;
  burstEveryMs?: number;
}

export interface ProductionStats {
  sent: number;
  ok: number;
  rateLimited: number;
  /** Answers carrying x-ratelimit-will-be-throttled: true. */
  warned: number;
  /** Anything else (network errors, other statuses). */
  failed: number;
  /** Milliseconds from the start to the last call sent. */
  elapsedMs: number;
}

export interface ProductionTraffic {
  stats(): ProductionStats;
  /** Stops sending, waits for the calls in flight, and gives the final counts. */
  stop(): Promise<ProductionStats>;
}

export function startProductionTraffic(o: ProductionTrafficOptions): ProductionTraffic {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  const stats: ProductionStats = { sent: 0, ok: 0, rateLimited: 0, warned: 0, failed: 0, elapsedMs: 0 };
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const stepMs = o.perSecond > 0 ? 1000 / o.perSecond : Infinity;
  let steadySent = 0;
  let burstsSent = 0;
  let stopped = false;
  let closed: Promise<void> | undefined;

  const call = (): void => {
    stats.sent += 1;
    stats.elapsedMs = performance.now() - start;
    const done = request(`${o.url}/open/v5/users/@production-${stats.sent}`, {
      dispatcher: agent,
      headers: { 'x-access-key': o.accessKey, 'x-access-secret': o.accessSecret },
    })
      .then(async (res) => {
        await res.body.dump();
        if (res.headers['x-ratelimit-will-be-throttled'] === 'true') stats.warned += 1;
        if (res.statusCode === 429) stats.rateLimited += 1;
        else if (res.statusCode === 200) stats.ok += 1;
        else stats.failed += 1;
      })
      .catch(() => {
        stats.failed += 1;
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };

  const tick = (): void => {
    if (stopped) return;
    const elapsed = performance.now() - start;
    while (steadySent * stepMs <= elapsed) {
      steadySent += 1;
      call();
    }
    const burst = o.burst ?? 0;
    const every = o.burstEveryMs ?? 0;
    // The first burst comes half a period in, so it lands on a repair already under way.
    while (burst > 0 && every > 0 && (burstsSent + 0.5) * every <= elapsed) {
      burstsSent += 1;
      for (let i = 0; i < burst; i++) call();
    }
  };
  const timer = setInterval(tick, 5);
  tick();

  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      clearInterval(timer);
      closed ??= Promise.all([...inFlight]).then(() => agent.close());
      await closed;
      return { ...stats };
    },
  };
}
