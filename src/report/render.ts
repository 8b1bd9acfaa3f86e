import type { AuditHeader } from '../audit/audit-header';
import { describeChannel } from '../channel/channel-info';
import type { ChannelPace, Progress } from '../../workflows/definitions';
import { COMPARED_FIELDS } from '../domain/types';
import { OUTAGE_PHASES, type AuditSummary, type ReasonGroup } from './summary';
import { describeWaits, formatSeconds } from './waits';

// The diff summary as text for a terminal. Field names, reasons, counts and line numbers only.

const LINES_SHOWN = 20;

function table(rows: [string, string][], indent = '  '): string[] {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}

function lineList(group: ReasonGroup): string {
  const shown = group.lines.slice(0, LINES_SHOWN);
  const more = group.count - shown.length;
  return `line${group.count === 1 ? '' : 's'} ${shown.join(', ')}${more > 0 ? `, … and ${more} more` : ''}`;
}

function groupRows(groups: ReasonGroup[], withStage: boolean): [string, string][] {
  return groups.map((g) => [
    withStage && g.stage ? `${g.stage}: ${g.reason}` : g.reason,
    `${String(g.count).padStart(6)}  ${lineList(g)}`,
  ]);
}

const n = (value: number) => String(value).padStart(6);

export interface RenderContext {
  /** Where the entries came from (the audit log's path). */
  source?: string;
  /** Lines of the file that were not audit records. */
  unreadable?: number;
  /** The run is still going: the numbers are what it has recorded so far. */
  inProgress?: boolean;
  /** The log's header, if it has one: the channel is printed from it. */
  header?: AuditHeader;
  /** The run's encounters with Channel Talk's rate limit, when the run itself was asked (`--workflow-id`). */
  channelPace?: ChannelPace;
  /** The receiver outage under way, when the running run itself was asked (`--workflow-id`): not in the log yet. */
  receiverUnavailable?: ReceiverUnavailableNow;
  /** The time the report was made (the length of an outage under way). */
  now?: Date;
}

export type ReceiverUnavailableNow = NonNullable<Progress['receiverUnavailable']>;

/** The section on the run's waits for its receiver and store (issue 28); none when it never waited. */
export function renderWaits(s: AuditSummary, ctx: Pick<RenderContext, 'receiverUnavailable' | 'now'>): string[] {
  const lines = describeWaits(s.waits);
  const now = ctx.receiverUnavailable;
  if (now) {
    const sofar = ctx.now
      ? ` (${formatSeconds(Math.max(0, (ctx.now.getTime() - Date.parse(now.since)) / 1000))} so far)`
      : '';
    lines.push(`receiver unavailable since ${now.since}${sofar}, still: ${now.waitingReplays} replays wait for it`);
  }
  if (lines.length === 0) return [];
  const w = s.waits;
  const totals = [
    w.receiver.length ? `receiver ${formatSeconds(w.receiverSeconds)}` : '',
    w.store.length ? `store ${formatSeconds(w.storeSeconds)}` : '',
  ].filter(Boolean);
  return [
    '',
    `Waits for the receiver and the audit/pending store${totals.length ? ` (${totals.join(', ')} in all)` : ''}: nobody was given up on for them`,
    ...lines.map((line) => `  ${line}`),
  ];
}

/** One line: what the run met on Channel Talk's rate limit (not in the audit log: the run's own counters). */
export function describeRatePressure(c: ChannelPace): string {
  const seen =
    c.limit === null
      ? 'no rate-limit headers seen'
      : `last seen: limit ${c.limit}, remaining ${c.remaining ?? '?'}${c.givingWay ? ', giving way to other traffic' : ''}`;
  return `Channel Talk's rate limit: ${c.rateLimited} answers 429, ${c.warnings} grace-period warnings, lookups waited ${(c.waitedMs / 1000).toFixed(1)} s in all for the pacer (${seen})`;
}

export function renderSummary(s: AuditSummary, ctx: RenderContext = {}): string {
  const out = [
    ...headLines(s, ctx),
    ...outcomeLines(s),
    ...renderWaits(s, ctx),
    ...breakdownLines(s),
    ...outageLines(s),
    ...guardLines(s),
    ...webhookLines(s),
    ...scopeLines(s),
    ...noteLines(s, ctx),
  ];
  return `${out.join('\n')}\n`;
}

/** Which run, which channel, and what kind of log (still going, dry run, mixed). */
function headLines(s: AuditSummary, ctx: RenderContext): string[] {
  const out: string[] = [];
  const who = s.backfill
    ? `${s.backfill}${s.runLabel && s.runLabel !== s.backfill ? ` (run label ${s.runLabel})` : ''}`
    : 'backfill';
  out.push(`Audit of ${who}: ${s.rows} rows${ctx.source ? ` (${ctx.source})` : ''}`);
  if (ctx.header) {
    const { channel, ts, backfill } = ctx.header;
    out.push(`Channel Talk ${describeChannel(channel)}, from the log's header (written ${ts} by backfill ${backfill})`);
  }
  if (ctx.inProgress) out.push('The run is still going: these are the outcomes recorded so far.');
  if (ctx.channelPace) out.push(describeRatePressure(ctx.channelPace));
  if (s.dryRun === true) {
    out.push('Dry run: nothing was replayed; upserts and deletes are what a real run would send.');
    out.push(
      'A real run looks a member up again right before any replay that waited (REPLAY_RECHECK_AFTER_MS) and sends the ' +
        'fresh decision: never a delete for a user Channel Talk has again, never an upsert for one it has deleted.',
    );
  }
  if (s.dryRun === null && s.rows > 0) out.push('Mixed: some entries are from a dry run, some from a real run.');
  return out;
}

/** The outcomes, and the replays delivered. */
function outcomeLines(s: AuditSummary): string[] {
  const out: string[] = [];
  out.push(
    ...table([
      ['upserts', n(s.outcomes.upsert)],
      ['deletes', n(s.outcomes.delete)],
      ['unchanged', n(s.outcomes.unchanged)],
      ['failed', n(s.outcomes.failed)],
      ['skipped', n(s.outcomes.skipped)],
      // Beside the outcomes, not one of them: each such member is counted above by what was finally recorded.
      ...(s.changedDuringRepair > 0
        ? [['changed on Channel Talk during the repair', n(s.changedDuringRepair)] as [string, string]]
        : []),
    ]),
  );
  if (s.dryRun !== true)
    out.push(
      `Replays delivered (accepted by the receiver): ${s.delivered} of ${s.outcomes.upsert + s.outcomes.delete} upserts and deletes`,
    );

  return out;
}

/** Differing members per field, deletes, failures and skipped rows per reason. */
function breakdownLines(s: AuditSummary): string[] {
  const out: string[] = [];
  const failedDiffering = s.differingMembers - s.outcomes.upsert;
  out.push('');
  out.push(
    `Members differing, per field: ${s.differingMembers}${failedDiffering > 0 ? ` (of them ${failedDiffering} whose replay failed)` : ''}`,
  );
  out.push(...table(COMPARED_FIELDS.map((f) => [f, n(s.differingFields[f])])));

  out.push('');
  const deletes = Object.entries(s.deletes);
  out.push(`Deletes per reason: ${s.outcomes.delete}`);
  if (deletes.length > 0) out.push(...table(deletes.map(([reason, count]) => [reason, n(count)])));

  out.push('');
  out.push(`Failures per reason: ${s.outcomes.failed}`);
  if (s.failures.length > 0) out.push(...table(groupRows(s.failures, true)));

  out.push('');
  out.push(`Skipped per reason: ${s.outcomes.skipped}`);
  if (s.skipped.length > 0) out.push(...table(groupRows(s.skipped, false)));

  return out;
}

/** When Channel Talk last changed what differs, against the outage window. */
function outageLines(s: AuditSummary): string[] {
  const out: string[] = [];
  out.push('');
  out.push(`Outage window ${s.outage.start} .. ${s.outage.end}: when Channel Talk last changed what differs`);
  const m = s.outage.members;
  out.push(
    ...table([
      ['changed inside the window (the outage may have hidden it)', n(m.inside)],
      ['changed before it (already out of sync)', n(m.before)],
      ['changed after it', n(m.after)],
      ['no change time from Channel Talk', n(m.unknown)],
    ]),
  );
  out.push("  per field, by that field's change time:");
  out.push(
    ...table(
      [
        ['', OUTAGE_PHASES.map((p) => p.padStart(8)).join('')],
        ...COMPARED_FIELDS.map((f): [string, string] => [
          f,
          OUTAGE_PHASES.map((p) => String(s.outage.fields[f][p]).padStart(8)).join(''),
        ]),
      ],
      '    ',
    ),
  );

  const o = s.onlyChangedSince;
  out.push(
    `  onlyChangedSince ${o.since} would skip ${o.wouldSkip} of the ${s.differingMembers} differing members (every differing field changed before it)`,
  );

  return out;
}

/** The delete guard replayed over the log. */
function guardLines(s: AuditSummary): string[] {
  const out: string[] = [];
  out.push('');
  const g = s.deleteGuard;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  out.push(
    `Delete guard (maxDeleteShare ${g.maxDeleteShare}, deleteGuardMinDecisions ${g.minDecisions}): ${g.deletes} of ${g.decisions} decisions are deletes (${pct(g.share)})`,
  );
  out.push(
    g.wouldTripAt !== null
      ? `  a real run would pause at decision ${g.wouldTripAt}: check the channel and CHANNEL_API_URL before confirming the deletes`
      : g.decisions < g.minDecisions
        ? `  a real run would not pause: fewer than ${g.minDecisions} decisions`
        : '  a real run would not pause',
  );
  if (g.confirmed)
    out.push(
      `  deletes confirmed at ${g.confirmed.at} (resume with {"confirmDeletes": true}): ${g.confirmed.deletes} deletes recorded after the confirmation`,
    );
  return out;
}

/** Per registered webhook (target channel-webhooks), when there are any. */
function webhookLines(s: AuditSummary): string[] {
  const out: string[] = [];
  if (s.webhooks.length > 0) {
    out.push('');
    out.push(`Per registered webhook${s.dryRun === true ? ' (what a real run would send)' : ''}:`);
    out.push(
      ...table(
        [
          ['', ['upserts', 'deletes', 'delivered', 'failed', 'blocked', 'not v5'].map((h) => h.padStart(10)).join('')],
          ...s.webhooks.map((w): [string, string] => [
            w.name ? `${w.id} (${w.name})` : w.id,
            [w.upserts, w.deletes, w.delivered, w.failed, w.skippedBlocked, w.skippedApiVersion]
              .map((v) => String(v).padStart(10))
              .join(''),
          ]),
        ],
        '  ',
      ),
    );
  }

  return out;
}

/** Deliveries per scope (WEBHOOK_EVENT_NAMES=scopes), when there are any. */
function scopeLines(s: AuditSummary): string[] {
  const out: string[] = [];
  if (s.scopeDeliveries.length > 0) {
    out.push('');
    const dry = s.dryRun === true;
    out.push(`Deliveries per scope (WEBHOOK_EVENT_NAMES=scopes)${dry ? ' (what a real run would send)' : ''}:`);
    const columns = dry ? ['deliveries'] : ['deliveries', 'delivered'];
    out.push(
      ...table(
        [
          ['', columns.map((h) => h.padStart(12)).join('')],
          ...s.scopeDeliveries.map((d): [string, string] => [
            d.event,
            (dry ? [d.deliveries] : [d.deliveries, d.delivered]).map((v) => String(v).padStart(12)).join(''),
          ]),
        ],
        '  ',
      ),
    );
  }

  return out;
}

/** Repeated records and unreadable lines, when there were any. */
function noteLines(s: AuditSummary, ctx: RenderContext): string[] {
  const out: string[] = [];
  const notes: string[] = [];
  if (s.repeated > 0)
    notes.push(`${s.repeated} repeated records of an already recorded line were ignored (the first record wins)`);
  if (ctx.unreadable) notes.push(`${ctx.unreadable} lines that are not audit records were skipped`);
  if (notes.length > 0) out.push('', ...notes.map((note) => `Note: ${note}.`));
  return out;
}
