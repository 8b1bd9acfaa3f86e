// Warms the harness (the simulator and the endpoint, in the benchmark's own process) before the first measured
// run. Without it the first project run pays the harness's JIT warm-up (about 0.7 s more harness CPU per 20k
// on this 2-core machine, competing with the worker), and the script run after it gets a warm harness: the
// first pair's ratio was biased against the project. Nothing here touches the worker or the script process:
// their own cold start stays in their figures.
import { request } from 'undici';

export async function warmUpHarness(o: {
  channelUrl: string;
  accessKey: string;
  accessSecret: string;
  webhookUrl: string;
  token: string;
  memberIds: string[];
  concurrency: number;
}): Promise<{ requests: number; ms: number }> {
  const started = Date.now();
  let next = 0;
  let requests = 0;
  const hookUrl = `${o.webhookUrl}?token=${encodeURIComponent(o.token)}`;
  const one = async () => {
    for (let i = next++; i < o.memberIds.length; i = next++) {
      const memberId = o.memberIds[i]!;
      const lookup = await request(`${o.channelUrl}/open/v5/users/@${encodeURIComponent(memberId)}`, {
        headers: { 'x-access-key': o.accessKey, 'x-access-secret': o.accessSecret },
      });
      await lookup.body.text();
      const post = await request(hookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event: 'upsert', type: 'user', entity: { memberId } }),
      });
      await post.body.dump();
      requests += 2;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, one));
  return { requests, ms: Date.now() - started };
}
