// Temporal actions: what Temporal Cloud bills (issue 26). Counted two ways for every project run:
//
// 1. From the histories of every run of the chain, by Temporal Cloud's published rules
//    (https://docs.temporal.io/cloud/actions, source docs/evaluate/temporal-cloud/actions.mdx in
//    temporalio/documentation, and https://docs.temporal.io/cloud/migrate/estimate-actions), one rule per event:
//    - Workflow started (client start, continue-as-new, child start): 1 per WorkflowExecutionStarted; search
//      attributes given at the start are free.
//    - Activity started or retried: 1 per attempt. A history keeps only the last attempt's ActivityTaskStarted,
//      whose `attempt` is how many starts there were.
//    - Timer started: 1 per TimerStarted (the SDK's implicit timers, e.g. `condition` with a timeout, included).
//    - Search attribute upsert: 1 per UpsertWorkflowSearchAttributes, whatever it sets, except one that only sets
//      TemporalChangeVersion (what `patched()` records), which is exempt.
//    - Signal: 1 per signal received (WorkflowExecutionSignaled) or sent from the workflow.
//    - Update: 1 per accepted update (rejected ones are billed too but leave no event).
//    - Local activities and side effects: all the markers of one workflow task are 1 action (RecordMarker
//      commands are billed per workflow task). `patched()` markers are markers too.
//    - Child workflow: 2 per start initiated (the start and the execution).
//    - Workflow execution options updated: 1 per event.
//    - Memo change (WorkflowPropertiesModified): not named by the published list, but the server's own meter
//      counts it (command_ModifyWorkflowProperties), so it is counted, and shown on its own line.
// 2. The server's own `action` counter (Prometheus, namespace "default"), read before and after the run: what a
//    self-hosted server meters as billable (estimate-actions above). It also sees what no history holds:
//    activity heartbeats that reached the server, and queries. Heartbeats are added to the history count from
//    here; queries are the benchmark's own progress polling, reported apart and left out of the product's figure.
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Actions of one history (or several, summed) by the published rules, per kind. */
export interface HistoryActions {
  workflowStarts: number;
  activityAttempts: number;
  timers: number;
  searchAttributeUpserts: number;
  memoChanges: number;
  signals: number;
  updates: number;
  markerTasks: number;
  childStarts: number;
  optionsUpdates: number;
}

export const NO_HISTORY_ACTIONS: HistoryActions = {
  workflowStarts: 0,
  activityAttempts: 0,
  timers: 0,
  searchAttributeUpserts: 0,
  memoChanges: 0,
  signals: 0,
  updates: 0,
  markerTasks: 0,
  childStarts: 0,
  optionsUpdates: 0,
};

/** The search attribute `patched()` sets; its upserts are exempt from actions. */
const CHANGE_VERSION = 'TemporalChangeVersion';

export function historyActions(events: readonly HistoryEvent[]): HistoryActions {
  const a = { ...NO_HISTORY_ACTIONS };
  const tasksWithMarkers = new Set<string>();
  for (const e of events) {
    switch (e.eventType) {
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        a.workflowStarts += 1;
        break;
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        a.activityAttempts += Math.max(1, Number(e.activityTaskStartedEventAttributes?.attempt ?? 1));
        break;
      case EventType.EVENT_TYPE_TIMER_STARTED:
        a.timers += 1;
        break;
      case EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: {
        const fields = Object.keys(
          e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {},
        );
        if (fields.some((name) => name !== CHANGE_VERSION)) a.searchAttributeUpserts += 1;
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        a.memoChanges += 1;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
      case EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        a.signals += 1;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        a.updates += 1;
        break;
      case EventType.EVENT_TYPE_MARKER_RECORDED:
        tasksWithMarkers.add(String(e.markerRecordedEventAttributes?.workflowTaskCompletedEventId ?? e.eventId));
        break;
      case EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        a.childStarts += 2;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
        a.optionsUpdates += 1;
        break;
    }
  }
  a.markerTasks = tasksWithMarkers.size;
  return a;
}

export function addHistoryActions(x: HistoryActions, y: HistoryActions): HistoryActions {
  const sum = { ...x };
  for (const k of Object.keys(sum) as Array<keyof HistoryActions>) sum[k] += y[k];
  return sum;
}

export function totalHistoryActions(a: HistoryActions): number {
  return Object.values(a).reduce((s, v) => s + v, 0);
}

/** The server's `action` counter of one namespace, per action_type, from Prometheus text. */
export function parseActionMetric(text: string, namespace = 'default'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('action{')) continue;
    const close = line.lastIndexOf('}');
    const labels = Object.fromEntries(
      [...line.slice('action{'.length, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (labels.namespace !== namespace) continue;
    const type = labels.action_type ?? '?';
    out[type] = (out[type] ?? 0) + Number(line.slice(close + 1).trim());
  }
  return out;
}

/** after - before, per action type (types that did not move are left out). */
export function actionDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [type, n] of Object.entries(after)) {
    const d = n - (before[type] ?? 0);
    if (d !== 0) delta[type] = d;
  }
  return delta;
}

export async function readServerActions(metricsUrl: string): Promise<Record<string, number>> {
  const res = await fetch(metricsUrl);
  if (!res.ok) throw new Error(`${metricsUrl}: HTTP ${res.status}`);
  return parseActionMetric(await res.text());
}

const sumWhere = (byType: Record<string, number>, test: RegExp) =>
  Object.entries(byType).reduce((s, [type, n]) => s + (test.test(type) ? n : 0), 0);

export interface RunActions {
  /** By the published rules, from the histories of every run of the chain. */
  history: HistoryActions;
  /** Activity heartbeats that reached the server (its meter; no history holds them). */
  heartbeats: number;
  /** The product's actions: history + heartbeats. */
  total: number;
  perThousandMembers: number;
  /** The server's own meter during the run, per action type (queries included). */
  server: Record<string, number>;
  serverTotal: number;
  /** Queries the benchmark made (its progress line): not the product's, not in `total`. */
  benchQueries: number;
}

export function runActions(
  history: HistoryActions,
  server: Record<string, number>,
  benchQueries: number,
  members: number,
): RunActions {
  const heartbeats = sumWhere(server, /heartbeat/i);
  const total = totalHistoryActions(history) + heartbeats;
  return {
    history,
    heartbeats,
    total,
    perThousandMembers: (total * 1000) / Math.max(1, members),
    server,
    serverTotal: sumWhere(server, /./),
    benchQueries,
  };
}

/** One line for the report: the total per 1,000 members and what it is made of. */
export function describeActions(a: RunActions): string {
  const h = a.history;
  const parts: Array<[string, number]> = [
    ['workflow starts (incl. continue-as-new)', h.workflowStarts],
    ['activity attempts', h.activityAttempts],
    ['heartbeats reaching the server', a.heartbeats],
    ['timers', h.timers],
    ['search-attribute upserts', h.searchAttributeUpserts],
    ['memo changes', h.memoChanges],
    ['workflow tasks with markers', h.markerTasks],
    ['signals', h.signals],
    ['updates', h.updates],
    ['child starts', h.childStarts],
    ['options updates', h.optionsUpdates],
  ];
  const made = parts
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${n} ${what}`)
    .join(' + ');
  return `${a.total} (${a.perThousandMembers.toFixed(2)} per 1,000 members) = ${made || 'nothing'}`;
}
