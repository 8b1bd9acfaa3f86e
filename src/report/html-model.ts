import type { AuditEntry } from '../audit/audit-entry';
import type { AuditHeader } from '../audit/audit-header';
import { describeChannel } from '../channel/channel-info';
import { COUNTER_OF } from '../domain/counters';
import { COMPARED_FIELDS, OUTCOMES, type OutcomeKind } from '../domain/types';
import { VERDICTS } from '../domain/verdicts';
import { formatDuration } from '../domain/duration';
import { SummaryBuilder, type AuditSummary, type OutagePhase, type OutageWindow, type SummaryOptions } from './summary';
import { LineSet } from './line-set';
import type { VerifySummary } from './verify-report';
import type { ChannelPace } from '../../workflows/definitions';
import { ENDED_TEXT, formatSeconds } from './waits';

// What the one-file HTML report shows (`report --format html`), as plain data built from the report's data model
// (AuditSummary, src/report/summary.ts; VerifySummary for the proof of repair): so what the page says is table-tested
// here, and src/report/html-report.ts only lays it out. Counts, field names, reasons, lines and memberIds only: an
// email or a phone number never enters it (the audit log holds none).

/** One bar of a chart. `key` names the count on the page (`data-count`), for tests and for anyone scraping it. */
export interface Bar {
  key: string;
  label: string;
  value: number;
  tone: 'good' | 'bad' | 'warn' | 'neutral';
}

export interface FailureRow {
  line: number;
  memberId: string | null;
  stage: string;
  reason: string;
  status: number | null;
  attempts: number | null;
}

/** A member looked up again right before a replay that waited (issue 23), and what its fresh decision was. */
export interface RecheckRow {
  line: number;
  memberId: string | null;
  recheckedAt: string;
  changed: boolean;
  how: string;
  outcome: string;
}

export interface NextStep {
  what: string;
  command: string;
}

export interface VerifyRow {
  line: number;
  memberId: string | null;
  verdict: string;
  fields: string;
  reason: string;
}

export interface HtmlReportModel {
  title: string;
  /** Sentences the reader must see first (still running, dry run, mixed). */
  notes: string[];
  run: [label: string, value: string][];
  outcomes: Bar[];
  fields: Bar[];
  /** Per differing field (and all differing members), when Channel Talk last changed it against the outage window. */
  outage: { window: string; rows: { label: string; phases: Record<OutagePhase, number> }[] };
  deliveries: { dryRun: boolean; due: number; bars: Bar[] };
  deletes: Bar[];
  deleteGuard: string[];
  /** Replays that waited and were looked up again before sending; those Channel Talk changed meanwhile. */
  recheck: { rechecked: number; changed: number; rows: RecheckRow[] };
  /** What the run met on Channel Talk's rate limit (issue 24); null without the run's totals. */
  rateLimit: {
    rateLimited: number;
    warnings: number;
    /** Lookups' waits for the pacer, summed, in seconds with one decimal. */
    waitedSeconds: string;
    /** The bucket as last seen, as one sentence. */
    lastSeen: string;
  } | null;
  skipped: Bar[];
  failures: { total: number; rows: FailureRow[] };
  nextSteps: NextStep[];
  webhooks: AuditSummary['webhooks'];
  /** WEBHOOK_EVENT_NAMES=scopes: deliveries per scope (in a real run also those delivered). */
  scopes: Bar[];
  /** Rows recorded per interval from the first record to the last: how the run went over time. */
  timeline: { bucketSeconds: number; start: string | null; counts: number[] };
  verify: { source: string; bars: Bar[]; stillDiffers: Bar[]; total: number; rows: VerifyRow[] } | null;
  /** The times the run waited for its receiver or store (issue 28), one row each; empty when it never waited. */
  waits: WaitRow[];
}

export interface WaitRow {
  what: string;
  since: string;
  /** How long, in words; `so far` while it lasts. */
  lasted: string;
  until: string | null;
  ended: string;
  waited: string;
}

/** Failed members listed on the page (the count is always exact; `--format csv` lists every row). */
export const FAILURES_SHOWN = 500;
export const VERIFY_ROWS_SHOWN = 500;
export const RECHECK_ROWS_SHOWN = 500;
/** Columns of the timeline at most. */
export const TIMELINE_BUCKETS = 48;

/** Facts of the log the summary does not keep: when records were written, and the failed members themselves. */
export class HtmlReportBuilder {
  readonly summary: SummaryBuilder;
  private first: string | null = null;
  private last: string | null = null;
  private readonly failures: FailureRow[] = [];
  private readonly seen = new LineSet();
  private readonly rechecks: RecheckRow[] = [];
  private rechecked = 0;
  private heldDeletes = 0;
  /** Rows recorded per second (epoch s): a day-long run is 86,400 numbers at most. */
  private readonly perSecond = new Map<number, number>();

  constructor(window: OutageWindow, opts: SummaryOptions = {}) {
    this.summary = new SummaryBuilder(window, opts);
  }

  add(entry: AuditEntry): void {
    this.summary.add(entry);
    // The first record of a line wins, as in the summary; later ones are ignored.
    if (!this.seen.add(entry.line)) return;
    if (typeof entry.ts === 'string') {
      if (this.first === null || entry.ts < this.first) this.first = entry.ts;
      if (this.last === null || entry.ts > this.last) this.last = entry.ts;
      const second = Math.floor(Date.parse(entry.ts) / 1000);
      if (Number.isFinite(second)) this.perSecond.set(second, (this.perSecond.get(second) ?? 0) + 1);
    }
    if (entry.heldByDeleteGuard === true) this.heldDeletes += 1;
    if (typeof entry.recheckedAt === 'string') {
      this.rechecked += 1;
      if (this.rechecks.length < RECHECK_ROWS_SHOWN)
        this.rechecks.push({
          line: entry.line,
          memberId: entry.memberId ?? null,
          recheckedAt: entry.recheckedAt,
          changed: entry.changedDuringRepair === true,
          how: entry.recheck ?? '',
          outcome: entry.outcome,
        });
    }
    if (entry.outcome === 'failed' && this.failures.length < FAILURES_SHOWN)
      this.failures.push({
        line: entry.line,
        memberId: entry.memberId ?? null,
        stage: entry.stage ?? '',
        reason: entry.reason ?? '',
        status: typeof entry.status === 'number' ? entry.status : null,
        attempts: typeof entry.attempts === 'number' ? entry.attempts : null,
      });
  }

  facts(): LogFacts {
    return {
      firstRecord: this.first,
      lastRecord: this.last,
      rechecked: this.rechecked,
      rechecks: [...this.rechecks].sort((a, b) => a.line - b.line),
      heldDeletes: this.heldDeletes,
      perSecond: [...this.perSecond.entries()].sort(([a], [b]) => a - b),
      failures: [...this.failures].sort((a, b) => a.line - b.line),
    };
  }
}

export interface LogFacts {
  firstRecord: string | null;
  lastRecord: string | null;
  /** Entries looked up again before a waiting replay (all of them), and the first RECHECK_ROWS_SHOWN in line order. */
  rechecked: number;
  rechecks: RecheckRow[];
  /** Deletes the delete guard held back until enough decisions were in. */
  heldDeletes: number;
  /** [epoch second, rows recorded in it], ascending. */
  perSecond: [number, number][];
  failures: FailureRow[];
}

export interface HtmlReportInput {
  summary: AuditSummary;
  facts: LogFacts;
  auditPath: string;
  header?: AuditHeader | undefined;
  inProgress?: boolean;
  /** The verify run's summary and where its log is, when `--verify` was given. */
  verify?: { source: string; summary: VerifySummary } | undefined;
  /** When the page was made (ISO). */
  generatedAt: string;
  /** The run's own rate-limit totals, from Temporal (`report --workflow-id`); absent with `--audit`. */
  channelPace?: ChannelPace | undefined;
  /** The receiver outage under way, when the running run itself was asked (`--workflow-id`). */
  receiverUnavailable?: { since: string; waitingReplays: number } | undefined;
}

/** One row per outage of the receiver or the store (src/report/waits.ts), then the receiver outage under way. */
export function waitRows(
  s: AuditSummary,
  input: Pick<HtmlReportInput, 'receiverUnavailable' | 'generatedAt'>,
): WaitRow[] {
  const rows: WaitRow[] = [
    ...s.waits.receiver.map((o) => ({
      what: 'receiver unavailable',
      since: o.since,
      lasted: formatSeconds(o.seconds),
      until: o.until,
      ended: ENDED_TEXT[o.ended],
      waited: [
        o.waitingReplays !== null ? `${o.waitingReplays} replays` : '',
        o.batchesLeft !== null ? `${o.batchesLeft} batches not started` : '',
      ]
        .filter(Boolean)
        .join(', '),
    })),
    ...s.waits.store.map((o) => ({
      what: 'audit/pending store unavailable',
      since: o.since,
      lasted: formatSeconds(o.seconds),
      until: o.until,
      ended: ENDED_TEXT.back,
      waited: [o.batches ? `${o.batches} batches` : '', o.replays ? `${o.replays} replays` : '']
        .filter(Boolean)
        .join(', '),
    })),
  ];
  const now = input.receiverUnavailable;
  if (now)
    rows.push({
      what: 'receiver unavailable',
      since: now.since,
      lasted: `${formatSeconds(Math.max(0, (Date.parse(input.generatedAt) - Date.parse(now.since)) / 1000))} so far`,
      until: null,
      ended: 'not yet: the run waits for it',
      waited: `${now.waitingReplays} replays`,
    });
  return rows;
}

const OUTCOME_TONE: Record<OutcomeKind, Bar['tone']> = {
  upsert: 'good',
  delete: 'warn',
  unchanged: 'neutral',
  failed: 'bad',
  skipped: 'neutral',
};
/** An outcome's bar is labelled with its counter's name. */
const OUTCOME_LABEL: Record<OutcomeKind, string> = COUNTER_OF;

/** A shell word: single-quoted unless plain. */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The source as the next run's input takes it: from the header (a query's SQL is never recorded: the user adds it). */
function sourceInput(header: AuditHeader | undefined): Record<string, unknown> {
  const source = header?.source;
  if (!source) return { type: 'csv', path: '<your member source>' };
  if (source.path !== undefined) return { type: source.type, path: source.path };
  if (source.table !== undefined) return { type: source.type, table: source.table };
  return { type: source.type, query: '<your query>' };
}

function startCommand(workflowId: string, input: Record<string, unknown>): string {
  return [
    'temporal workflow start --type backfillWebhooks --task-queue webhook-backfill',
    `--workflow-id ${shellWord(workflowId)}`,
    `--input ${shellWord(JSON.stringify(input))}`,
  ].join(' ');
}

/** What to do next: retry the failed (`only`), execute a dry run's plan (`fromPlan`), prove the repair. */
export function nextSteps(s: AuditSummary, auditPath: string, header: AuditHeader | undefined): NextStep[] {
  const name = s.backfill ?? header?.backfill ?? 'backfill';
  const source = sourceInput(header);
  const steps: NextStep[] = [];
  if (s.dryRun === true && s.outcomes.upsert + s.outcomes.delete > 0)
    steps.push({
      what: `Execute this plan: replay exactly the ${s.outcomes.upsert} upserts and ${s.outcomes.delete} deletes it lists, each looked up again first`,
      command: startCommand(`${name}-repair`, { source, fromPlan: { auditPath } }),
    });
  if (s.outcomes.failed > 0)
    steps.push({
      what: `Retry the ${s.outcomes.failed} failed members only, once their cause is fixed`,
      command: startCommand(`${name}-retry`, {
        source,
        only: { auditPath, outcomes: ['failed'] },
        ...(s.dryRun ? { dryRun: true } : {}),
      }),
    });
  if (s.dryRun === false && s.delivered > 0)
    steps.push({
      what: 'Prove the repair: look the replayed members up again against a fresh export of your data',
      command: `webhook-backfill verify --after ${shellWord(name)} --source <fresh export> --workflow-id ${shellWord(`${name}-verify`)} --wait`,
    });
  return steps;
}

function deleteGuardStory(s: AuditSummary, heldDeletes: number): string[] {
  const g = s.deleteGuard;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const story = [
    `Deletes are ${g.deletes} of ${g.decisions} decisions (${pct(g.share)}); the guard holds a run back when they are more than ${pct(g.maxDeleteShare)} once ${g.minDecisions} decisions are in.`,
  ];
  if (g.wouldTripAt !== null)
    story.push(
      s.dryRun === true
        ? `A real run would pause at decision ${g.wouldTripAt} and hold its deletes until someone checks the channel and resumes with {"confirmDeletes": true}.`
        : `The guard tripped at decision ${g.wouldTripAt}: the run paused and held its deletes back.`,
    );
  else
    story.push(
      g.decisions < g.minDecisions
        ? `It did not trip: fewer than ${g.minDecisions} decisions.`
        : 'It did not trip: deletes stayed under the share.',
    );
  if (heldDeletes > 0)
    story.push(`${heldDeletes} deletes were held back until enough decisions were in, then sent by their own replay.`);
  if (g.confirmed)
    story.push(
      `Deletes were confirmed at ${g.confirmed.at} (resumed with {"confirmDeletes": true}); ${g.confirmed.deletes} deletes were recorded after the confirmation.`,
    );
  else if (g.wouldTripAt !== null && s.dryRun === false && s.outcomes.delete > 0)
    story.push('No delete carries a confirmation stamp.');
  return story;
}

function rateLimitFacts(c: ChannelPace): NonNullable<HtmlReportModel['rateLimit']> {
  const bucket =
    c.limit === null
      ? 'Channel Talk sent no rate-limit headers.'
      : `Last seen: limit ${c.limit}, remaining ${c.remaining ?? '?'}${c.givingWay ? ', the job giving way to other traffic' : ''}.`;
  return {
    rateLimited: c.rateLimited,
    warnings: c.warnings,
    waitedSeconds: (c.waitedMs / 1000).toFixed(1),
    lastSeen: bucket,
  };
}

/** Rows per interval: at most TIMELINE_BUCKETS columns of a whole number of seconds each. */
export function timeline(perSecond: readonly [number, number][]): HtmlReportModel['timeline'] {
  if (perSecond.length === 0) return { bucketSeconds: 1, start: null, counts: [] };
  const first = perSecond[0]![0];
  const span = perSecond.at(-1)![0] - first + 1;
  const bucketSeconds = Math.max(1, Math.ceil(span / TIMELINE_BUCKETS));
  const counts = new Array<number>(Math.ceil(span / bucketSeconds)).fill(0);
  for (const [second, n] of perSecond) counts[Math.floor((second - first) / bucketSeconds)]! += n;
  return { bucketSeconds, start: new Date(first * 1000).toISOString(), counts };
}

function runFacts(input: HtmlReportInput): [string, string][] {
  const { summary: s, facts, header } = input;
  const rows: [string, string][] = [];
  if (header) rows.push(['Channel Talk channel', describeChannel(header.channel)]);
  rows.push(['Backfill (workflow id)', s.backfill ?? header?.backfill ?? '(unknown)']);
  if (s.runLabel ?? header?.runLabel) rows.push(['Run label', (s.runLabel ?? header?.runLabel)!]);
  if (header?.source)
    rows.push(['Source', `${header.source.type}: ${header.source.path ?? header.source.table ?? 'query'}`]);
  rows.push([
    'Kind',
    s.dryRun === true
      ? 'dry run (a plan: nothing replayed)'
      : s.dryRun === false
        ? 'repair (replays sent)'
        : 'mixed or empty',
  ]);
  if (header?.target) rows.push(['Replay target', header.target]);
  if (header?.fromPlan) rows.push(['Executing the plan', header.fromPlan.auditPath]);
  if (header?.only) rows.push(['Only members of', `${header.only.auditPath} (${header.only.outcomes.join(', ')})`]);
  if (header?.onlyChangedSince) rows.push(['onlyChangedSince', header.onlyChangedSince]);
  if (header) rows.push(['Prepared', header.ts]);
  if (facts.firstRecord) rows.push(['First record', facts.firstRecord]);
  if (facts.lastRecord) rows.push(['Last record', facts.lastRecord]);
  const start = Date.parse(header?.ts ?? facts.firstRecord ?? '');
  const end = Date.parse(facts.lastRecord ?? '');
  if (Number.isFinite(start) && Number.isFinite(end) && end >= start)
    rows.push(['Duration', formatDuration((end - start) / 1000)]);
  rows.push(['Source rows recorded', String(s.rows)]);
  rows.push([
    'Delete guard settings',
    `maxDeleteShare ${s.deleteGuard.maxDeleteShare}, deleteGuardMinDecisions ${s.deleteGuard.minDecisions}`,
  ]);
  rows.push(['Audit log', input.auditPath]);
  return rows;
}

export function buildHtmlModel(input: HtmlReportInput): HtmlReportModel {
  const { summary: s, facts } = input;
  const notes: string[] = [];
  if (input.inProgress) notes.push('The run is still going: these are the outcomes recorded so far.');
  if (s.dryRun === true)
    notes.push('Dry run: nothing was replayed; upserts and deletes are what a real run would send.');
  if (s.dryRun === null && s.rows > 0) notes.push('Mixed: some entries are from a dry run, some from a real run.');
  if (s.repeated > 0)
    notes.push(`${s.repeated} repeated records of an already recorded line were ignored (the first record wins).`);

  const replayFailures = s.failures.filter((g) => g.stage === 'replay');
  // Replays due: the upserts and deletes (each delivered unless a dry run), and the replays that failed.
  const due = s.outcomes.upsert + s.outcomes.delete + replayFailures.reduce((n, g) => n + g.count, 0);
  const deliveryBars: Bar[] = [
    { key: 'delivered', label: 'accepted by the receiver', value: s.delivered, tone: 'good' },
    ...replayFailures.map((g, i): Bar => ({
      key: `replay-failed-${i}`,
      label: `failed: ${g.reason}`,
      value: g.count,
      tone: 'bad',
    })),
  ];

  const verify = input.verify
    ? {
        source: input.verify.source,
        total: input.verify.summary.members,
        bars: VERDICTS.map((v): Bar => ({
          key: `verdict-${v.replace(/ /g, '-')}`,
          label: v,
          value: input.verify!.summary.verdicts[v],
          tone: v === 'repaired' ? 'good' : v === 'changed since' ? 'neutral' : 'bad',
        })),
        stillDiffers: COMPARED_FIELDS.map((f): Bar => ({
          key: `still-differs-${f}`,
          label: f,
          value: input.verify!.summary.stillDiffers[f],
          tone: 'bad',
        })),
        rows: input.verify.summary.toLookAt.slice(0, VERIFY_ROWS_SHOWN).map((e): VerifyRow => ({
          line: e.line,
          memberId: e.memberId ?? null,
          verdict: e.verdict ?? '',
          fields: (e.fields ?? []).join(', '),
          reason: e.reason ?? '',
        })),
      }
    : null;

  return {
    title: `Repair report: ${s.backfill ?? input.header?.backfill ?? 'backfill'}`,
    notes,
    run: runFacts(input),
    outcomes: OUTCOMES.map((o) => ({
      key: `outcome-${o}`,
      label: OUTCOME_LABEL[o],
      value: s.outcomes[o],
      tone: OUTCOME_TONE[o],
    })),
    fields: COMPARED_FIELDS.map((f) => ({ key: `field-${f}`, label: f, value: s.differingFields[f], tone: 'warn' })),
    outage: {
      window: `${s.outage.start} .. ${s.outage.end}`,
      rows: [
        { label: 'differing members', phases: s.outage.members },
        ...COMPARED_FIELDS.map((f) => ({ label: f, phases: s.outage.fields[f] })),
      ],
    },
    deliveries: { dryRun: s.dryRun === true, due, bars: deliveryBars },
    deletes: Object.entries(s.deletes).map(([reason, count], i) => ({
      key: `delete-${i}`,
      label: reason,
      value: count,
      tone: 'warn',
    })),
    deleteGuard: deleteGuardStory(s, facts.heldDeletes),
    recheck: { rechecked: facts.rechecked, changed: s.changedDuringRepair, rows: facts.rechecks },
    rateLimit: input.channelPace ? rateLimitFacts(input.channelPace) : null,
    skipped: s.skipped.map((g, i) => ({ key: `skipped-${i}`, label: g.reason, value: g.count, tone: 'neutral' })),
    failures: { total: s.outcomes.failed, rows: facts.failures },
    nextSteps: nextSteps(s, input.auditPath, input.header),
    webhooks: s.webhooks,
    scopes: s.scopeDeliveries.flatMap((d): Bar[] => [
      { key: `scope-${d.event}-deliveries`, label: `${d.event}: deliveries`, value: d.deliveries, tone: 'neutral' },
      ...(s.dryRun === true
        ? []
        : [
            {
              key: `scope-${d.event}-delivered`,
              label: `${d.event}: delivered`,
              value: d.delivered,
              tone: 'good',
            } as Bar,
          ]),
    ]),
    timeline: timeline(facts.perSecond),
    verify,
    waits: waitRows(s, input),
  };
}
