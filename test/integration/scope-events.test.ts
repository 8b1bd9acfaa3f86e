import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelWebhook } from '../../src/channel/webhooks';
import {
  n8nTriggerKeeps,
  startWebhookReceiver,
  type Delivery,
  type WebhookReceiver,
} from '../../dev/simulator/webhook-receiver';
import type { DevServer } from '../../dev/temporal-cli';
import { summarize } from '../../src/report/summary';
import { scopedWebhookId, webhookId } from '../../src/webhook/webhook-id';
import { WORKFLOW_TYPE, type BackfillResult, type BackfillInput } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, WEBHOOK_TOKEN, type Stack } from '../support/stack';

// WEBHOOK_EVENT_NAMES=scopes end to end on a real Temporal dev server (issue 25). The channel has two registered
// webhooks, each received by an endpoint that filters bodies as Channel Talk's n8n trigger node does when set to
// that webhook's scopes (keep a body only when its events include `body.event`): every accepted delivery must be
// one the trigger keeps, and each member must reach the webhooks Channel Talk would have sent it to, once per scope.
// Then the same examples to WEBHOOK_URL: a member whose contact and consent both changed is two deliveries.

const C = 'member.upserted.contact';
const S = 'member.upserted.subscription';
const D = 'member.deleted';
const T = { contact: 'reg-token-contact-3b1e', consent: 'reg-token-consent-c70d' };
const CONTACT_FIELDS = ['email', 'mobileNumber'];
const CONSENT_FIELDS = ['unsubscribeEmail', 'unsubscribeTexting'];

let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

function registeredWebhooks(contact: WebhookReceiver, consent: WebhookReceiver): ChannelWebhook[] {
  return [
    { id: 'wh-contact', name: 'n8n contact', url: contact.url, token: T.contact, scopes: [C], apiVersion: 'v5' },
    { id: 'wh-consent', name: 'n8n consent', url: consent.url, token: T.consent, scopes: [S, D], apiVersion: 'v5' },
  ];
}

/** The scopes Channel Talk sends a member's change under, from its decision (an expected outcome or an audit entry). */
function scopesOf(o: { outcome: string; fields?: readonly string[] }): string[] {
  if (o.outcome === 'delete') return [D];
  if (o.outcome !== 'upsert') return [];
  const fields = o.fields ?? [];
  return [
    ...(fields.some((f) => CONTACT_FIELDS.includes(f)) ? [C] : []),
    ...(fields.some((f) => CONSENT_FIELDS.includes(f)) ? [S] : []),
  ];
}

function idOf(workflowId: string, memberId: string, scope: string): string {
  return scopedWebhookId(webhookId(workflowId, memberId, scope === D ? 'delete' : 'upsert'), scope);
}

/** `token memberId event webhook-id` per delivery due, sorted. */
function due(
  decided: Array<{ memberId?: string; outcome: string; fields?: readonly string[] }>,
  workflowId: string,
  token: string,
  scopes: string[] = [C, S, D],
): string[] {
  return decided
    .flatMap((o) => scopesOf(o).map((scope) => ({ memberId: o.memberId ?? '', scope })))
    .filter((x) => scopes.includes(x.scope))
    .map((x) => [token, x.memberId, x.scope, idOf(workflowId, x.memberId, x.scope)].join(' '))
    .sort();
}

/** Per scope, how many members an audit log decided a delivery for. */
function perScope(entries: Array<{ outcome: string; fields?: readonly string[] }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const scope of entries.flatMap(scopesOf)) counts[scope] = (counts[scope] ?? 0) + 1;
  return counts;
}

async function run(stack: Stack, workflowId: string, input: Partial<BackfillInput>): Promise<BackfillResult> {
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 25, ...input }],
  });
  return (await handle.result()) as BackfillResult;
}

const seen = (ds: Delivery[]) => ds.map((d) => [d.token, d.memberId, d.event, d.webhookId].join(' ')).sort();

describe('WEBHOOK_EVENT_NAMES=scopes on a real Temporal dev server', () => {
  it("every accepted delivery is one Channel Talk's n8n trigger keeps, routed as Channel Talk routes; to WEBHOOK_URL one delivery per scope", async () => {
    const contact = await startWebhookReceiver({ triggerEvents: [C] });
    const consent = await startWebhookReceiver({ triggerEvents: [S, D] });
    let stack: Stack | undefined;
    try {
      stack = await startStack({
        server,
        users: examples.users,
        channelFaults: examples.faults.channel,
        env: { WEBHOOK_EVENT_NAMES: 'scopes' },
      });
      stack.simulator.setWebhooks(registeredWebhooks(contact, consent));
      const want = examples.expected.dryRunCounts;
      // No receiver refuses anything here: each member ends as the examples' dry run decides it.
      const outcomes = examples.expected.outcomes.map((o) => ({ ...o, outcome: o.dryRunOutcome }));
      expect(outcomes.filter((o) => scopesOf(o).length === 2).length).toBeGreaterThan(5);

      // The real run, first (the simulator's lookup faults are used up by the first run): one outcome per member.
      const wf = 'scopes-registered';
      const result = await run(stack, wf, { target: { type: 'channel-webhooks' } });
      expect(result).toMatchObject({
        processed: want.rows,
        upserts: want.upserts,
        deletes: want.deletes,
        unchanged: want.unchanged,
        failed: want.failed,
        skipped: want.skipped,
      });
      // No accepted delivery the trigger would ignore, and no retry: each scope once, with its own id.
      for (const d of [...contact.deliveries(), ...consent.deliveries()]) {
        expect(d.status, `${d.memberId} ${d.event}`).toBe(200);
        expect(d.triggered, `${d.memberId} ${d.event}`).toBe(true);
      }
      // Routed as Channel Talk routes: contact changes to wh-contact only; consent changes and deletes to wh-consent.
      expect(seen(contact.deliveries())).toEqual(due(outcomes, wf, T.contact, [C]));
      expect(seen(consent.deliveries())).toEqual(due(outcomes, wf, T.consent, [S, D]));
      // The report counts the deliveries per scope (one webhook per scope here), all delivered.
      const counts = perScope(outcomes);
      expect(summarize(await readAudit(result.auditPath)).scopeDeliveries).toEqual(
        [D, C, S].map((event) => ({ event, deliveries: counts[event], delivered: counts[event] })),
      );
      expect(stack.receiver.deliveries()).toEqual([]);

      // A dry run plans the deliveries per scope, sending nothing.
      const sent = contact.deliveries().length + consent.deliveries().length;
      const dry = await run(stack, 'scopes-dry', { target: { type: 'channel-webhooks' }, dryRun: true });
      expect(contact.deliveries().length + consent.deliveries().length).toBe(sent);
      const dryAudit = await readAudit(dry.auditPath);
      const planned = perScope(dryAudit);
      expect(summarize(dryAudit).scopeDeliveries).toEqual(
        [D, C, S].map((event) => ({ event, deliveries: planned[event], delivered: 0 })),
      );

      // To WEBHOOK_URL (all three scopes by default): a member whose contact and consent changed is two deliveries,
      // two ids; each is one a trigger set to the three member scopes keeps.
      const urlWf = 'scopes-url';
      const byUrl = await run(stack, urlWf, {});
      const urlAudit = await readAudit(byUrl.auditPath);
      const atUrl = stack.receiver.deliveries();
      expect(atUrl.every((d) => d.status === 200 && n8nTriggerKeeps([C, S, D], d.body))).toBe(true);
      expect(seen(atUrl)).toEqual(due(urlAudit, urlWf, WEBHOOK_TOKEN));
      const twice = urlAudit.find((e) => scopesOf(e).length === 2)!;
      const its = atUrl.filter((d) => d.memberId === twice.memberId);
      expect(its.map((d) => d.event)).toEqual([C, S]);
      expect(new Set(its.map((d) => d.webhookId)).size).toBe(2);
      expect(twice.deliveries).toEqual(
        [C, S].map((event) => ({ event, webhookId: idOf(urlWf, twice.memberId!, event), endpoints: 1 })),
      );
    } finally {
      await stack?.close();
      await Promise.all([contact.close(), consent.close()]);
    }
  });
});
