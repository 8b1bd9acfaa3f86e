// bench/customer-script.ts is the benchmark's reference (issue 26): the script a customer would write instead of
// using this project. Two things make it that reference, and both are checked here: it imports nothing from this
// repository, and it gets the repair right (every member's outcome and replay against the synthetic data set's
// known answer, over real HTTP to the Channel Talk simulator and the bench's endpoint).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerWebhookId, runCustomerScript } from '../../bench/customer-script';
import { startLeanReceiver, type LeanReceiver } from '../../bench/receiver';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import { checkSyntheticRun, syntheticUserLookup, writeSyntheticCsv, type AuditRecord } from '../../dev/synthetic';

const SCRIPT = path.resolve(__dirname, '../../bench/customer-script.ts');
const N = 600;

describe('the customer-written reference script', () => {
  it('imports nothing from this project: only node built-ins, undici and libphonenumber-js', () => {
    const imports = [...readFileSync(SCRIPT, 'utf8').matchAll(/^import [^;]*? from '([^']+)';/gms)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const from of imports) expect(from).toMatch(/^(node:|undici$|libphonenumber-js$)/);
  });

  let dir: string;
  let simulator: ChannelSimulator;
  let receiver: LeanReceiver;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'customer-script-'));
    await writeSyntheticCsv(path.join(dir, 'members.csv'), N);
    simulator = await startChannelSimulator({
      users: [],
      lookupUser: syntheticUserLookup(N),
      accessKey: 'key',
      accessSecret: 'secret',
    });
    receiver = await startLeanReceiver({ token: 'token' });
  });
  afterAll(async () => {
    await simulator?.close();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const http of ['fetch', 'undici'] as const) {
    it(`repairs the synthetic data set exactly over ${http}`, async () => {
      receiver.reset();
      const out = path.join(dir, `outcomes-${http}.jsonl`);
      const result = await runCustomerScript({
        csv: path.join(dir, 'members.csv'),
        channelUrl: simulator.url,
        accessKey: 'key',
        accessSecret: 'secret',
        webhookUrl: receiver.url,
        webhookToken: 'token',
        concurrency: 32,
        rateLimit: undefined,
        http,
        runLabel: `run-${http}`,
        out,
      });
      expect(result.rows).toBe(N);
      const audit = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditRecord);
      const check = checkSyntheticRun({
        n: N,
        runLabel: `run-${http}`,
        webhookIdOf: customerWebhookId,
        audit,
        deliveries: receiver.deliveries(),
      });
      expect(check.problems).toEqual([]);
      expect(check.auditEntries).toBe(N);
      expect(check.membersAcceptedMoreThanOnce).toBe(0);
    });
  }
});
