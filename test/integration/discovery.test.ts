import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelWebhook } from '../../src/channel/webhooks';
import {
  startWebhookReceiver,
  type Delivery,
  type ReceiverBehaviour,
  type WebhookReceiver,
} from '../../dev/simulator/webhook-receiver';
import type { DevServer } from '../../dev/temporal-cli';
import type { WebhookEvent } from '../../src/domain/types';
import { webhookId } from '../../src/webhook/webhook-id';
import { WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type ExpectedOutcome, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, type Stack } from '../support/stack';
import { verifyAsReceiver } from '../support/standard-webhooks';

// Webhook discovery end to end on a real Temporal dev server: the run lists the channel's registered webhooks from
// the Channel Talk simulator (GET /open/v5/webhooks) and replays to each, instead of WEBHOOK_URL.

const T = {
  upserts: 'reg-token-upserts-81f2',
  deletes: 'reg-token-deletes-27c9',
  both: 'reg-token-both-5e03',
  blocked: 'reg-token-blocked-9a41',
  leads: 'reg-token-leads-66d0',
};

let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

interface Receivers {
  /** wh-upserts (member.upserted.contact + .subscription), and the blocked wh-blocked. */
  up: WebhookReceiver;
  /** wh-deletes (member.deleted), and the lead-only wh-leads. */
  del: WebhookReceiver;
  /** wh-both (member.upserted.contact + member.deleted). */
  both: WebhookReceiver;
}

function registeredWebhooks(r: Receivers): ChannelWebhook[] {
  return [
    {
      id: 'wh-upserts',
      name: 'CRM upserts',
      url: r.up.url,
      token: T.upserts,
      scopes: ['member.upserted.contact', 'member.upserted.subscription'],
      apiVersion: 'v5',
      blocked: false,
    },
    {
      id: 'wh-deletes',
      name: 'CRM deletes',
      url: r.del.url,
      token: T.deletes,
      scopes: ['member.deleted'],
      apiVersion: 'v5',
      blocked: false,
    },
    {
      id: 'wh-both',
      name: 'Warehouse',
      url: r.both.url,
      token: T.both,
      scopes: ['member.upserted.contact', 'member.deleted', 'userChat.opened'],
      apiVersion: 'v5',
      blocked: false,
    },
    {
      id: 'wh-blocked',
      name: 'Old CRM',
      url: r.up.url,
      token: T.blocked,
      scopes: ['member.upserted.contact', 'member.upserted.subscription', 'member.deleted'],
      apiVersion: 'v5',
      blocked: true,
    },
    {
      id: 'wh-leads',
      name: 'Lead tracker',
      url: r.del.url,
      token: T.leads,
      scopes: ['lead.upserted.contact', 'lead.deleted'],
      apiVersion: 'v5',
      blocked: false,
    },
  ];
}

async function withDiscovery<T>(
  o: { env?: Record<string, string>; bothBehaviours?: Record<string, ReceiverBehaviour> },
  body: (stack: Stack, r: Receivers) => Promise<T>,
): Promise<T> {
  const [up, del, both] = await Promise.all([
    startWebhookReceiver(),
    startWebhookReceiver(),
    startWebhookReceiver({ behaviours: o.bothBehaviours }),
  ]);
  const receivers = { up, del, both };
  let stack: Stack | undefined;
  try {
    stack = await startStack({ server, users: examples.users, channelFaults: examples.faults.channel, env: o.env });
    stack.simulator.setWebhooks(registeredWebhooks(receivers));
    return await body(stack, receivers);
  } finally {
    await stack?.close();
    await Promise.all([up.close(), del.close(), both.close()]);
  }
}

async function run(stack: Stack, workflowId: string, dryRun = false): Promise<BackfillResult> {
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [
      {
        source: { type: 'csv', path: EXAMPLE_CSV },
        target: { type: 'channel-webhooks' },
        batchSize: 25,
        ...(dryRun ? { dryRun: true } : {}),
      },
    ],
  });
  return (await handle.result()) as BackfillResult;
}

/** The event a member was due, whether or not its replay was then refused (dry-run decisions are the decided ones). */
function dueEvent(o: ExpectedOutcome): WebhookEvent | undefined {
  if (o.outcome === 'upsert' || o.outcome === 'delete') return o.outcome;
  if (o.outcome === 'failed' && o.reason === 'replay' && (o.dryRunOutcome === 'upsert' || o.dryRunOutcome === 'delete'))
    return o.dryRunOutcome;
  return undefined;
}

/** Channel Talk's routing: wh-both (member.upserted.contact + member.deleted) gets deletes and contact changes only. */
const CONTACT_FIELDS = ['email', 'mobileNumber'];
function dueAtBoth(o: ExpectedOutcome): boolean {
  const due = dueEvent(o);
  return due === 'delete' || (due === 'upsert' && (o.fields ?? []).some((f) => CONTACT_FIELDS.includes(f)));
}

/**
 * The outcome with registered webhooks: the examples' receiver faults are wh-both's, so a member wh-both refuses
 * fails only if wh-both is due it; a consent-only upsert it refuses is delivered by wh-upserts alone.
 */
function outcomeHere(o: ExpectedOutcome): ExpectedOutcome {
  if (o.outcome === 'failed' && o.reason === 'replay' && !dueAtBoth(o)) return { ...o, outcome: o.dryRunOutcome };
  return o;
}

/** The ids the audit line names: subscribers in listing order, then the blocked one skipped. */
function routesFor(o: ExpectedOutcome): string[] {
  const due = dueEvent(o);
  if (due === undefined) return [];
  const first =
    due === 'delete' ? ['wh-deletes', 'wh-both'] : dueAtBoth(o) ? ['wh-upserts', 'wh-both'] : ['wh-upserts'];
  return [...first, 'wh-blocked (blocked)'];
}

function membersDue(
  event: WebhookEvent,
  delivered: 'all-due' | 'recorded-delivered',
  at: 'any' | 'both' = 'any',
): string[] {
  return examples.expected.outcomes
    .filter((o) => at === 'any' || dueAtBoth(o))
    .filter((o) => (delivered === 'all-due' ? dueEvent(o) === event : outcomeHere(o).outcome === event))
    .map((o) => o.memberId)
    .sort();
}

const accepted = (r: WebhookReceiver) => r.accepted();
const memberIds = (ds: Delivery[]) => ds.map((d) => d.memberId ?? '(none)').sort();

describe('target channel-webhooks on a real Temporal dev server', () => {
  it('replays each change only to the webhooks subscribed to its kind, each with its own token; blocked and lead-only webhooks get nothing', async () => {
    // wh-both answers as the examples' receiver does: 400 for some members, 503/500 a few times for others.
    await withDiscovery({ bothBehaviours: examples.faults.receiver }, async (stack, r) => {
      const workflowId = 'discovery-run';
      const result = await run(stack, workflowId);
      const outcomes = examples.expected.outcomes.map(outcomeHere);
      const count = (k: string) => outcomes.filter((o) => o.outcome === k).length;
      // Two consent-only upserts the examples' receiver refuses are not wh-both's: delivered, not failed.
      expect(count('failed')).toBe(examples.expected.counts.failed - 2);
      expect(result).toMatchObject({
        processed: outcomes.length,
        upserts: count('upsert'),
        deletes: count('delete'),
        unchanged: count('unchanged'),
        failed: count('failed'),
        skipped: count('skipped'),
        dryRun: false,
      });

      const auditText = await readFile(result.auditPath, 'utf8');
      const audit = await readAudit(result.auditPath);
      expect(audit).toHaveLength(outcomes.length);
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const want of outcomes) {
        const got = byLine.get(want.line);
        expect(got?.outcome, `line ${want.line} (${want.memberId})`).toBe(want.outcome);
        if (want.outcome === 'failed') expect(got!.stage).toBe(want.reason);
        // A member wh-both refused is failed even though its other subscriber accepted it; the reason names wh-both.
        if (want.outcome === 'failed' && want.reason === 'replay') {
          expect(got!.reason).toBe('replay rejected: rejected by 1 of 2 subscribed webhooks: webhook wh-both HTTP 400');
        }
        // The audit line names where the member went (ids and names, the blocked subscriber as skipped).
        const named = (got?.webhooks ?? []).map((w) => (w.skipped ? `${w.id} (${w.skipped})` : w.id));
        expect(named, `line ${want.line} webhooks`).toEqual(routesFor(want));
      }
      expect(byLine.get(outcomes.find((o) => o.outcome === 'delete')!.line)!.webhooks).toEqual([
        { id: 'wh-deletes', name: 'CRM deletes' },
        { id: 'wh-both', name: 'Warehouse' },
        { id: 'wh-blocked', name: 'Old CRM', skipped: 'blocked' },
      ]);
      for (const token of Object.values(T)) expect(auditText).not.toContain(token);

      // wh-upserts: every upsert that was due (including those wh-both then refused), once, with its token.
      expect(r.up.deliveries().every((d) => d.token === T.upserts && d.event === 'upsert' && d.status === 200)).toBe(
        true,
      );
      expect(memberIds(accepted(r.up))).toEqual(membersDue('upsert', 'all-due'));
      // wh-deletes: every due delete, once.
      expect(r.del.deliveries().every((d) => d.token === T.deletes && d.event === 'delete' && d.status === 200)).toBe(
        true,
      );
      expect(memberIds(accepted(r.del))).toEqual(membersDue('delete', 'all-due'));
      // wh-both: deletes and contact changes only, never a consent-only change; accepted exactly for the members
      // recorded as delivered, once each.
      expect(r.both.deliveries().every((d) => d.token === T.both)).toBe(true);
      const contactOnlyAtBoth = new Set(
        examples.expected.outcomes.filter((o) => dueEvent(o) === 'upsert' && !dueAtBoth(o)).map((o) => o.memberId),
      );
      expect(contactOnlyAtBoth.size).toBeGreaterThan(30);
      expect(r.both.deliveries().filter((d) => contactOnlyAtBoth.has(d.memberId ?? ''))).toEqual([]);
      expect(memberIds(accepted(r.both))).toEqual(
        [
          ...membersDue('upsert', 'recorded-delivered', 'both'),
          ...membersDue('delete', 'recorded-delivered', 'both'),
        ].sort(),
      );
      const refused = r.both.deliveries().filter((d) => d.status === 400);
      expect(memberIds(refused)).toEqual(
        outcomes
          .filter((o) => o.outcome === 'failed' && o.reason === 'replay')
          .map((o) => o.memberId)
          .sort(),
      );

      // The blocked webhook (token T.blocked at r.up) and the lead-only one (T.leads at r.del) got nothing.
      const all = [...r.up.deliveries(), ...r.del.deliveries(), ...r.both.deliveries()];
      expect(all.filter((d) => d.token === T.blocked || d.token === T.leads)).toEqual([]);
      // WEBHOOK_URL is not used by this target.
      expect(stack.receiver.deliveries()).toEqual([]);

      // wh-both failed m-0179 (upsert) and m-0195 (delete) twice with 503 before accepting: the retries went to wh-both
      // only, so their other subscriber got exactly one delivery.
      expect(
        r.both
          .deliveries()
          .filter((d) => d.memberId === 'm-0179')
          .map((d) => d.status),
      ).toEqual([503, 503, 200]);
      expect(r.up.deliveries().filter((d) => d.memberId === 'm-0179')).toHaveLength(1);
      expect(
        r.both
          .deliveries()
          .filter((d) => d.memberId === 'm-0195')
          .map((d) => d.status),
      ).toEqual([503, 503, 200]);
      expect(r.del.deliveries().filter((d) => d.memberId === 'm-0195')).toHaveLength(1);

      // One webhook-id per member and event, the same at every endpoint; nothing for unchanged or skipped members.
      for (const d of all)
        expect(d.webhookId, `${d.memberId}`).toBe(webhookId(workflowId, d.memberId!, d.event as WebhookEvent));
      const noDelivery = new Set(
        outcomes
          .filter(
            (o) =>
              o.outcome === 'unchanged' || o.outcome === 'skipped' || (o.outcome === 'failed' && o.reason === 'fetch'),
          )
          .map((o) => o.memberId),
      );
      expect(all.filter((d) => noDelivery.has(d.memberId ?? ''))).toEqual([]);
      // Unsigned: no WEBHOOK_SIGNING_SECRET on this worker.
      expect(
        all.filter((d) => d.headers['webhook-signature'] !== undefined || d.headers['webhook-timestamp'] !== undefined),
      ).toEqual([]);
    });
  });

  it('with WEBHOOK_SIGNING_SECRET (and no WEBHOOK_URL) every delivery to every registered webhook verifies', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    await withDiscovery({ env: { WEBHOOK_SIGNING_SECRET: secret, WEBHOOK_URL: '' } }, async (stack, r) => {
      const workflowId = 'discovery-signed';
      const result = await run(stack, workflowId);
      // No receiver refuses anything here, so every decided replay is delivered: the dry-run counts.
      const want = examples.expected.dryRunCounts;
      expect(result).toMatchObject({
        processed: want.rows,
        upserts: want.upserts,
        deletes: want.deletes,
        unchanged: want.unchanged,
        failed: want.failed,
        skipped: want.skipped,
      });

      const all = [...r.up.deliveries(), ...r.del.deliveries(), ...r.both.deliveries()];
      // Each upsert goes to wh-upserts (and to wh-both when a contact field differs), each delete to wh-deletes and wh-both.
      const atBoth = examples.expected.outcomes.filter(dueAtBoth).length;
      expect(atBoth).toBeLessThan(want.upserts + want.deletes);
      expect(all).toHaveLength(want.upserts + want.deletes + atBoth);
      for (const d of all) {
        const verified = verifyAsReceiver(secret, d, d.receivedAt);
        expect(verified, `${d.token} ${d.memberId}`).toEqual({
          ok: true,
          webhookId: webhookId(workflowId, d.memberId!, d.event as WebhookEvent),
          timestamp: Number(d.headers['webhook-timestamp']),
        });
        // The timestamp is the attempt's own, and the check is not vacuous: another secret or another body fails.
        expect(Math.abs(d.receivedAt - Number(d.headers['webhook-timestamp']) * 1000)).toBeLessThan(5_000);
        expect(verifyAsReceiver(`whsec_${randomBytes(32).toString('base64')}`, d, d.receivedAt).ok).toBe(false);
        expect(verifyAsReceiver(secret, { ...d, rawBody: `${d.rawBody} ` }, d.receivedAt).ok).toBe(false);
      }
      expect(all.filter((d) => d.token === T.blocked || d.token === T.leads)).toEqual([]);
      expect(stack.receiver.deliveries()).toEqual([]);
    });
  });

  it('a dry run records, per member, the webhooks it would go to, and sends nothing', async () => {
    await withDiscovery({}, async (stack, r) => {
      const result = await run(stack, 'discovery-dry', true);
      expect(result).toMatchObject({ dryRun: true, processed: examples.expected.dryRunCounts.rows });
      const audit = await readAudit(result.auditPath);
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const want of examples.expected.outcomes) {
        const dry = { ...want, outcome: want.dryRunOutcome, reason: undefined };
        const named = (byLine.get(want.line)?.webhooks ?? []).map((w) => (w.skipped ? `${w.id} (${w.skipped})` : w.id));
        expect(named, `line ${want.line}`).toEqual(routesFor(dry));
      }
      expect([
        ...r.up.deliveries(),
        ...r.del.deliveries(),
        ...r.both.deliveries(),
        ...stack.receiver.deliveries(),
      ]).toEqual([]);
    });
  });
});
