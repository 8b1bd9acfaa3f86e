// bench/actions.ts counts Temporal actions as Temporal Cloud bills them (issue 26): one rule per history event,
// and the server's own `action` meter read from its Prometheus text.
import { temporal } from '@temporalio/proto';
import Long from 'long';
import { describe, expect, it } from 'vitest';
import {
  actionDelta,
  historyActions,
  NO_HISTORY_ACTIONS,
  parseActionMetric,
  runActions,
  totalHistoryActions,
} from '../../bench/actions';

const T = temporal.api.enums.v1.EventType;
type Event = temporal.api.history.v1.IHistoryEvent;
const payload = { metadata: {}, data: new Uint8Array([1]) };

describe('historyActions: Temporal Cloud rules per event', () => {
  const cases: Array<[string, Event[], Partial<typeof NO_HISTORY_ACTIONS>]> = [
    [
      'a run started (client or continue-as-new)',
      [{ eventType: T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED }],
      { workflowStarts: 1 },
    ],
    [
      'an activity: one action per attempt (the history keeps only the last start)',
      [
        { eventType: T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED },
        { eventType: T.EVENT_TYPE_ACTIVITY_TASK_STARTED, activityTaskStartedEventAttributes: { attempt: 3 } },
        { eventType: T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED },
      ],
      { activityAttempts: 3 },
    ],
    ['a timer', [{ eventType: T.EVENT_TYPE_TIMER_STARTED }], { timers: 1 }],
    [
      'a search-attribute upsert counts, one that only sets TemporalChangeVersion does not',
      [
        {
          eventType: T.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
          upsertWorkflowSearchAttributesEventAttributes: {
            searchAttributes: { indexedFields: { BackfillProcessed: payload } },
          },
        },
        {
          eventType: T.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
          upsertWorkflowSearchAttributesEventAttributes: {
            searchAttributes: { indexedFields: { TemporalChangeVersion: payload } },
          },
        },
      ],
      { searchAttributeUpserts: 1 },
    ],
    ['a memo change', [{ eventType: T.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED }], { memoChanges: 1 }],
    [
      'signals received and sent',
      [
        { eventType: T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED },
        { eventType: T.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED },
      ],
      { signals: 2 },
    ],
    ['an accepted update', [{ eventType: T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED }], { updates: 1 }],
    [
      'markers: one action per workflow task, however many markers it recorded',
      [
        {
          eventType: T.EVENT_TYPE_MARKER_RECORDED,
          markerRecordedEventAttributes: { workflowTaskCompletedEventId: Long.fromNumber(4) },
        },
        {
          eventType: T.EVENT_TYPE_MARKER_RECORDED,
          markerRecordedEventAttributes: { workflowTaskCompletedEventId: Long.fromNumber(4) },
        },
        {
          eventType: T.EVENT_TYPE_MARKER_RECORDED,
          markerRecordedEventAttributes: { workflowTaskCompletedEventId: Long.fromNumber(9) },
        },
      ],
      { markerTasks: 2 },
    ],
    [
      'a child workflow: its start and its execution',
      [{ eventType: T.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED }],
      { childStarts: 2 },
    ],
    [
      'workflow tasks, completions and continue-as-new itself are free',
      [
        { eventType: T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED },
        { eventType: T.EVENT_TYPE_WORKFLOW_TASK_STARTED },
        { eventType: T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED },
        { eventType: T.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW },
      ],
      {},
    ],
  ];
  it.each(cases)('%s', (_, events, expected) => {
    expect(historyActions(events)).toEqual({ ...NO_HISTORY_ACTIONS, ...expected });
  });
});

describe("the server's action meter", () => {
  const text = [
    '# HELP action action',
    'action{action_type="command_ScheduleActivityTask",namespace="default",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 5',
    'action{action_type="grpc_StartWorkflowExecution",namespace="default",operation="StartWorkflowExecution",service_name="frontend"} 1',
    'action{action_type="grpc_StartWorkflowExecution",namespace="temporal_system",operation="StartWorkflowExecution",service_name="frontend"} 2',
    'action{action_type="grpc_RecordActivityTaskHeartbeat",namespace="default",operation="RecordActivityTaskHeartbeat",service_name="frontend"} 7',
    'action_other{namespace="default"} 99',
  ].join('\n');

  it('reads one namespace per action type, and the change over a run', () => {
    const after = parseActionMetric(text);
    expect(after).toEqual({
      command_ScheduleActivityTask: 5,
      grpc_StartWorkflowExecution: 1,
      grpc_RecordActivityTaskHeartbeat: 7,
    });
    expect(actionDelta({ command_ScheduleActivityTask: 2, grpc_StartWorkflowExecution: 1 }, after)).toEqual({
      command_ScheduleActivityTask: 3,
      grpc_RecordActivityTaskHeartbeat: 7,
    });
  });

  it('adds the heartbeats that reached the server to the history count, per 1,000 members', () => {
    const history = { ...NO_HISTORY_ACTIONS, workflowStarts: 1, activityAttempts: 5 };
    const a = runActions(history, parseActionMetric(text), 3, 2_000);
    expect(totalHistoryActions(history)).toBe(6);
    expect(a.heartbeats).toBe(7);
    expect(a.total).toBe(13);
    expect(a.perThousandMembers).toBe(6.5);
    expect(a.benchQueries).toBe(3);
  });
});
