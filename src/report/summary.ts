import type { AuditEntry } from '../audit/audit-entry';
import { changedOnlyBefore, fieldChangeTime } from '../domain/decide';
import { COMPARED_FIELDS, type ComparedField, type OutcomeKind } from '../domain/types';
import { DEFAULT_GUARD, guardTripped, isDecision, type GuardThresholds } from '../domain/delete-guard';
import type { RunWait } from '../audit/run-wait';
import { LineSet } from './line-set';
import { summarizeWaits, type WaitsSummary } from './waits';

// The diff summary of an audit log, computed entry by entry so that a log of millions of lines is
// never held in memory: what the run did per outcome, which fields differed, why members were
// deleted, failed or skipped (with their source lines), and — from Channel Talk's own change times —
// which differences arose inside the outage window and which were already there before it.

/** The outage, 2024-11-01 00:40 to 2024-11-12 15:37 KST, in epoch ms (both ends included). */
export interface OutageWindow {
  start: number;
  end: number;
}
export const DEFAULT_OUTAGE: OutageWindow = {
  start: Date.parse('2024-10-31T15:40:00Z'),
  end: Date.parse('2024-11-12T06:37:00Z'),
};

/** Where a change time falls against the outage window; `unknown` when Channel Talk gave none. */
export type OutagePhase = 'inside' | 'before' | 'after' | 'unknown';
export const OUTAGE_PHASES: readonly OutagePhase[] = ['inside', 'before', 'after', 'unknown'];

export type PhaseCounts = Record<OutagePhase, number>;

export interface ReasonGroup {
  /** failures only: where it failed. */
  stage?: 'fetch' | 'replay';
  /** The reason with per-row numbers generalised ("first seen on line N"). */
  reason: string;
  count: number;
  /** Source lines, ascending; at most MAX_LINES_PER_GROUP of them (`count` is always exact). */
  lines: number[];
}

export interface AuditSummary {
  backfill: string | null;
  runLabel: string | null;
  /** true: every entry is from a dry run; false: none is; null: mixed or no entries. */
  dryRun: boolean | null;
  /** Source rows with a recorded outcome (the first record of a line counts; repeats are ignored). */
  rows: number;
  outcomes: Record<OutcomeKind, number>;
  /** Replays the receiver accepted (0 in a dry run). */
  delivered: number;
  /**
   * Members Channel Talk changed during the repair (issue 23): looked up again right before a replay that waited,
   * their decision or values had changed; each is also counted under the outcome that was finally recorded.
   */
  changedDuringRepair: number;
  /** Members whose stored data differs from Channel Talk's (upserts, and failed replays of upserts). */
  differingMembers: number;
  /** Of those, per field. A member differing in two fields counts under both. */
  differingFields: Record<ComparedField, number>;
  deletes: Record<string, number>;
  failures: ReasonGroup[];
  skipped: ReasonGroup[];
  outage: {
    start: string;
    end: string;
    /** Differing members by when they changed: `inside` if any differing field changed in the window. */
    members: PhaseCounts;
    /** Per differing field, by that field's change time. */
    fields: Record<ComparedField, PhaseCounts>;
  };
  /** Repeated records of an already recorded line (ignored, as the workers ignore them). */
  repeated: number;
  /**
   * The delete guard, replayed over the log in its order: decisions are lookups that came to upsert, delete or
   * unchanged (and upserts onlyChangedSince skipped); it trips once at least `minDecisions` are made and deletes
   * are more than `maxDeleteShare` of them.
   */
  deleteGuard: {
    maxDeleteShare: number;
    minDecisions: number;
    decisions: number;
    deletes: number;
    /** deletes / decisions at the end (0 without decisions). */
    share: number;
    /** The decision count at which a real run would have paused, or null if it would not. */
    wouldTripAt: number | null;
    /**
     * A real run someone resumed with {"confirmDeletes": true}: when (the earliest stamp), and how many deletes were
     * recorded after that confirmation. null when no delete carries one.
     */
    confirmed: { at: string; deletes: number } | null;
  };
  /** Differing members whose every differing field changed before `since`: what onlyChangedSince would skip. */
  onlyChangedSince: { since: string; wouldSkip: number };
  /** Target channel-webhooks: per registered webhook (by id), what it got, or in a dry run would get. */
  webhooks: WebhookCounts[];
  /**
   * WEBHOOK_EVENT_NAMES=scopes: per scope (the body's `event`), the deliveries made (in a dry run: that a real run
   * would make; one per member and endpoint) and, of them, those of members recorded as delivered. Empty otherwise.
   */
  scopeDeliveries: ScopeDeliveryCounts[];
  /** The times the run waited for its receiver or its audit/pending store (issue 28), from the log's waits. */
  waits: WaitsSummary;
}

export interface ScopeDeliveryCounts {
  event: string;
  deliveries: number;
  delivered: number;
}

export interface SummaryOptions {
  guard?: GuardThresholds;
  /** epoch ms; default the outage window's start. */
  onlyChangedSince?: number;
}

export interface WebhookCounts {
  id: string;
  name: string | null;
  /** Members routed to it, per event (in a dry run: that a real run would send it). */
  upserts: number;
  deletes: number;
  /** Of those, recorded as delivered (every routed webhook accepted), and recorded as failed. */
  delivered: number;
  failed: number;
  /** Members due to it that it did not get: blocked by Channel Talk, or not a v5 webhook. */
  skippedBlocked: number;
  skippedApiVersion: number;
}

export const MAX_LINES_PER_GROUP = 1000;

const zeroPhases = (): PhaseCounts => ({ inside: 0, before: 0, after: 0, unknown: 0 });
const perField = <T>(make: () => T): Record<ComparedField, T> =>
  Object.fromEntries(COMPARED_FIELDS.map((f) => [f, make()])) as Record<ComparedField, T>;

export function phaseOf(time: number | undefined, window: OutageWindow = DEFAULT_OUTAGE): OutagePhase {
  if (typeof time !== 'number' || !Number.isFinite(time)) return 'unknown';
  if (time < window.start) return 'before';
  if (time > window.end) return 'after';
  return 'inside';
}

/**
 * A differing member's phase: `inside` if any differing field changed inside the window (the outage
 * may have hidden that change); otherwise the phase of the latest change time it has.
 */
export function memberPhase(fieldPhases: readonly { phase: OutagePhase; time: number | undefined }[]): OutagePhase {
  if (fieldPhases.some((f) => f.phase === 'inside')) return 'inside';
  let latest: { phase: OutagePhase; time: number } | undefined;
  for (const f of fieldPhases) {
    if (f.time === undefined || f.phase === 'unknown') continue;
    if (!latest || f.time > latest.time) latest = { phase: f.phase, time: f.time };
  }
  return latest?.phase ?? 'unknown';
}

/** Per-row numbers inside a reason ("first seen on line 12") would make every row its own group. */
export function generalizeReason(reason: string): string {
  return reason.replace(/\bline \d+/g, 'line N');
}

class Groups {
  private groups = new Map<string, ReasonGroup>();

  add(reason: string, line: number, stage?: 'fetch' | 'replay'): void {
    const general = generalizeReason(reason);
    const key = `${stage ?? ''}\u0000${general}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { ...(stage ? { stage } : {}), reason: general, count: 0, lines: [] };
      this.groups.set(key, group);
    }
    group.count += 1;
    if (group.lines.length < MAX_LINES_PER_GROUP) group.lines.push(line);
  }

  result(): ReasonGroup[] {
    return [...this.groups.values()]
      .map((g) => ({ ...g, lines: [...g.lines].sort((a, b) => a - b) }))
      .sort(
        (a, b) => b.count - a.count || (a.stage ?? '').localeCompare(b.stage ?? '') || a.reason.localeCompare(b.reason),
      );
  }
}

/** Feed it audit entries one at a time (in file order: the first record of a line wins). */
export class SummaryBuilder {
  private readonly seen = new LineSet();
  private waits: readonly RunWait[] = [];
  private backfill: string | null = null;
  private runLabel: string | null = null;
  private dry = 0;
  private real = 0;
  private rows = 0;
  private repeated = 0;
  private delivered = 0;
  private changedDuringRepair = 0;
  private differingMembers = 0;
  private readonly outcomes: Record<OutcomeKind, number> = {
    upsert: 0,
    delete: 0,
    unchanged: 0,
    failed: 0,
    skipped: 0,
  };
  private readonly differingFields = perField(() => 0);
  private readonly deletes: Record<string, number> = {};
  private readonly failures = new Groups();
  private readonly skipped = new Groups();
  private readonly memberPhases = zeroPhases();
  private readonly fieldPhases = perField(zeroPhases);
  private readonly webhooks = new Map<string, WebhookCounts>();
  private readonly scopeDeliveries = new Map<string, ScopeDeliveryCounts>();

  private readonly guard: GuardThresholds;
  private readonly since: number;
  private decisions = 0;
  private guardDeletes = 0;
  private wouldTripAt: number | null = null;
  private confirmedAt: string | null = null;
  private confirmedDeletes = 0;
  private wouldSkip = 0;

  constructor(
    private readonly window: OutageWindow = DEFAULT_OUTAGE,
    opts: SummaryOptions = {},
  ) {
    this.guard = opts.guard ?? DEFAULT_GUARD;
    this.since = opts.onlyChangedSince ?? window.start;
  }

  private countDecision(entry: AuditEntry): void {
    if (entry.outcome === 'delete' && typeof entry.deletesConfirmedAt === 'string') {
      this.confirmedDeletes += 1;
      if (this.confirmedAt === null || entry.deletesConfirmedAt < this.confirmedAt)
        this.confirmedAt = entry.deletesConfirmedAt;
    }
    if (!isDecision(entry.outcome, entry.fields)) return;
    this.decisions += 1;
    if (entry.outcome === 'delete') this.guardDeletes += 1;
    if (
      this.wouldTripAt === null &&
      guardTripped({ decisions: this.decisions, deletes: this.guardDeletes }, this.guard)
    )
      this.wouldTripAt = this.decisions;
  }

  add(entry: AuditEntry): void {
    if (!this.seen.add(entry.line)) {
      this.repeated += 1;
      return;
    }
    this.rows += 1;
    this.backfill ??= entry.backfill ?? null;
    this.runLabel ??= entry.runLabel ?? null;
    if (entry.dryRun) this.dry += 1;
    else this.real += 1;
    if (entry.outcome in this.outcomes) this.outcomes[entry.outcome] += 1;
    if (entry.delivered === true) this.delivered += 1;
    if (entry.changedDuringRepair === true) this.changedDuringRepair += 1;
    this.countDecision(entry);

    switch (entry.outcome) {
      case 'delete': {
        const reason = entry.reason ?? '(no reason)';
        this.deletes[reason] = (this.deletes[reason] ?? 0) + 1;
        break;
      }
      case 'failed':
        this.failures.add(entry.reason ?? '(no reason)', entry.line, entry.stage);
        break;
      case 'skipped':
        this.skipped.add(entry.reason ?? '(no reason)', entry.line);
        break;
      default:
        break;
    }

    if (Array.isArray(entry.webhooks)) this.addWebhooks(entry);
    if (Array.isArray(entry.deliveries)) this.addScopeDeliveries(entry);

    const fields = (entry.fields ?? []).filter((f): f is ComparedField =>
      (COMPARED_FIELDS as readonly string[]).includes(f),
    );
    if (fields.length > 0 && (entry.outcome === 'upsert' || entry.outcome === 'failed')) {
      this.differingMembers += 1;
      const phases = fields.map((field) => {
        const time = fieldChangeTime(entry, field);
        const phase = phaseOf(time, this.window);
        this.differingFields[field] += 1;
        this.fieldPhases[field][phase] += 1;
        return { phase, time };
      });
      this.memberPhases[memberPhase(phases)] += 1;
      if (changedOnlyBefore(entry, fields, this.since)) this.wouldSkip += 1;
    }
  }

  private addWebhooks(entry: AuditEntry): void {
    for (const route of entry.webhooks ?? []) {
      if (typeof route?.id !== 'string') continue;
      let c = this.webhooks.get(route.id);
      if (!c) {
        c = {
          id: route.id,
          name: null,
          upserts: 0,
          deletes: 0,
          delivered: 0,
          failed: 0,
          skippedBlocked: 0,
          skippedApiVersion: 0,
        };
        this.webhooks.set(route.id, c);
      }
      if (typeof route.name === 'string') c.name = route.name;
      if (route.skipped === 'blocked') c.skippedBlocked += 1;
      else if (route.skipped === 'api-version') c.skippedApiVersion += 1;
      else {
        if (entry.event === 'upsert') c.upserts += 1;
        else if (entry.event === 'delete') c.deletes += 1;
        if (entry.delivered === true) c.delivered += 1;
        if (entry.outcome === 'failed') c.failed += 1;
      }
    }
  }

  private addScopeDeliveries(entry: AuditEntry): void {
    for (const d of entry.deliveries ?? []) {
      if (typeof d?.event !== 'string' || typeof d.endpoints !== 'number') continue;
      let c = this.scopeDeliveries.get(d.event);
      if (!c) {
        c = { event: d.event, deliveries: 0, delivered: 0 };
        this.scopeDeliveries.set(d.event, c);
      }
      c.deliveries += d.endpoints;
      if (entry.delivered === true) c.delivered += d.endpoints;
    }
  }

  /** The log's waits (AuditReadStats.waits, known once its entries are read). */
  addWaits(waits: readonly RunWait[]): void {
    this.waits = [...this.waits, ...waits];
  }

  result(): AuditSummary {
    return {
      backfill: this.backfill,
      runLabel: this.runLabel,
      dryRun: this.rows === 0 || (this.dry > 0 && this.real > 0) ? null : this.dry > 0,
      rows: this.rows,
      outcomes: { ...this.outcomes },
      delivered: this.delivered,
      changedDuringRepair: this.changedDuringRepair,
      differingMembers: this.differingMembers,
      differingFields: { ...this.differingFields },
      deletes: Object.fromEntries(Object.entries(this.deletes).sort(([a], [b]) => a.localeCompare(b))),
      failures: this.failures.result(),
      skipped: this.skipped.result(),
      outage: {
        start: new Date(this.window.start).toISOString(),
        end: new Date(this.window.end).toISOString(),
        members: { ...this.memberPhases },
        fields: perFieldCopy(this.fieldPhases),
      },
      repeated: this.repeated,
      deleteGuard: {
        ...this.guard,
        decisions: this.decisions,
        deletes: this.guardDeletes,
        share: this.decisions === 0 ? 0 : this.guardDeletes / this.decisions,
        wouldTripAt: this.wouldTripAt,
        confirmed: this.confirmedAt === null ? null : { at: this.confirmedAt, deletes: this.confirmedDeletes },
      },
      onlyChangedSince: { since: new Date(this.since).toISOString(), wouldSkip: this.wouldSkip },
      webhooks: [...this.webhooks.values()].map((c) => ({ ...c })).sort((a, b) => a.id.localeCompare(b.id)),
      scopeDeliveries: [...this.scopeDeliveries.values()]
        .map((c) => ({ ...c }))
        .sort((a, b) => a.event.localeCompare(b.event)),
      waits: summarizeWaits(this.waits),
    };
  }
}

function perFieldCopy(from: Record<ComparedField, PhaseCounts>): Record<ComparedField, PhaseCounts> {
  return Object.fromEntries(COMPARED_FIELDS.map((f) => [f, { ...from[f] }])) as Record<ComparedField, PhaseCounts>;
}

export function summarize(
  entries: Iterable<AuditEntry>,
  window: OutageWindow = DEFAULT_OUTAGE,
  opts: SummaryOptions = {},
): AuditSummary {
  const builder = new SummaryBuilder(window, opts);
  for (const entry of entries) builder.add(entry);
  return builder.result();
}
