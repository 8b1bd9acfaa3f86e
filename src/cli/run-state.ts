import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { progressQuery, type BackfillResult, type ChannelPace, type Progress } from '../../workflows/definitions';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { CliError } from './errors';
import { livePaceOf, withLivePace, type BatchBeat } from './live-pace';
import { describeBackfill, temporalError, type TemporalSession } from './temporal-env';

// What a backfill is doing now, from Temporal: the progress query while it runs, the result once it
// has completed, the failure once it has failed (or was terminated, cancelled, timed out).

export const QUERY_TIMEOUT_MS = 10_000;

/** An activity of the run whose last attempt failed and that Temporal is retrying (what the Web UI shows as pending). */
export interface RetryingActivity {
  activity: string;
  attempt: number;
  /** The identity of the worker whose attempt failed. */
  worker: string | null;
  message: string;
}

export type RunState =
  | {
      kind: 'running';
      workflowId: string;
      runId: string;
      taskQueue: string;
      progress: Progress;
      retrying: RetryingActivity[];
    }
  | { kind: 'completed'; workflowId: string; runId: string; result: BackfillResult }
  | { kind: 'closed'; workflowId: string; runId: string; status: string; message: string };

export class NoWorkerAnswer extends CliError {
  override name = 'NoWorkerAnswer';
}

export async function queryProgress(
  session: TemporalSession,
  handle: WorkflowHandle,
  taskQueue: string,
): Promise<Progress> {
  try {
    return await session.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(progressQuery));
  } catch (err) {
    if (isDeadline(err)) {
      throw new NoWorkerAnswer(
        `no worker answered the progress query of ${handle.workflowId} within ${QUERY_TIMEOUT_MS / 1000} s: is a worker polling task queue ${taskQueue}?`,
      );
    }
    throw temporalError(err, session, handle.workflowId);
  }
}

function isDeadline(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === 4 || (typeof message === 'string' && /deadline/i.test(message))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Why a closed run did not complete, from its result. */
export async function closedMessage(handle: WorkflowHandle, status: string): Promise<string> {
  try {
    await handle.result();
    return `run ${handle.workflowId} ${status.toLowerCase()}`;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    const detail = cause?.message || (err instanceof Error ? err.message : String(err));
    return `run ${handle.workflowId} ${status.toLowerCase().replace('_', ' ')}: ${detail}`;
  }
}

export async function runState(session: TemporalSession, workflowId: string): Promise<RunState> {
  const { handle, description } = await describeBackfill(session, workflowId);
  const status = description.status.name;
  const base = { workflowId, runId: description.runId };
  if (status === 'RUNNING') {
    const progress = await queryProgress(session, handle, description.taskQueue);
    const live = livePaceOf(await batchBeats(session, description.raw.pendingActivities), Date.now());
    const channelPace = withLivePace(progress.channelPace, live);
    return {
      kind: 'running',
      ...base,
      taskQueue: description.taskQueue,
      progress: channelPace ? { ...progress, channelPace } : progress,
      retrying: retryingActivities(description.raw.pendingActivities),
    };
  }
  if (status === 'COMPLETED') {
    try {
      return { kind: 'completed', ...base, result: (await handle.result()) as BackfillResult };
    } catch (err) {
      throw temporalError(err, session, workflowId);
    }
  }
  return { kind: 'closed', ...base, status, message: await closedMessage(handle, status) };
}

/** The audit log's path of a run (on the workers' storage) and whether the run is still going. */
export async function locateAudit(
  session: TemporalSession,
  workflowId: string,
): Promise<{
  path: string;
  running: boolean;
  channelPace?: ChannelPace;
  /** The receiver outage under way (progress), not yet in the audit log. */
  receiverUnavailable?: Progress['receiverUnavailable'];
}> {
  const { handle, description } = await describeBackfill(session, workflowId);
  const status = description.status.name;
  if (status === 'COMPLETED') {
    const result = (await handle
      .result()
      .catch((err: unknown) => Promise.reject(temporalError(err, session, workflowId)))) as BackfillResult;
    return {
      path: result.auditPath,
      running: false,
      ...(result.channelPace ? { channelPace: result.channelPace } : {}),
    };
  }
  let progress: Progress;
  try {
    progress = await queryProgress(session, handle, description.taskQueue);
  } catch (err) {
    if (status === 'RUNNING') throw err;
    const why = await closedMessage(handle, status);
    throw new CliError(
      `${why}; finding its audit log needs a worker to answer the progress query (or pass --audit FILE)`,
    );
  }
  if (!progress.auditPath) {
    if (status === 'RUNNING')
      throw new CliError(
        `run ${workflowId} has no audit log yet (it is still reading the member source); try again shortly`,
      );
    throw new CliError(`${await closedMessage(handle, status)}; it ended before writing an audit log`);
  }
  return {
    path: progress.auditPath,
    running: status === 'RUNNING',
    ...(progress.channelPace ? { channelPace: progress.channelPace } : {}),
    ...(progress.receiverUnavailable ? { receiverUnavailable: progress.receiverUnavailable } : {}),
  };
}

type PendingActivity = NonNullable<WorkflowExecutionDescription['raw']['pendingActivities']>[number];

/**
 * The last heartbeat of each running batch (its worker's pace now, src/cli/live-pace.ts), decoded as the client
 * decodes anything (with the payload codec when one is set). One it cannot decode is left out: the pace then stays
 * the workflow's, as of the last batch that ended.
 */
async function batchBeats(
  session: TemporalSession,
  pending: readonly PendingActivity[] | null | undefined,
): Promise<BatchBeat[]> {
  const { payloadCodecs, payloadConverter } = session.client.options.loadedDataConverter;
  const beats: BatchBeat[] = [];
  for (const p of pending ?? []) {
    const encoded = p.heartbeatDetails?.payloads;
    const at = p.lastHeartbeatTime;
    if (p.activityType?.name !== 'processBatch' || !encoded?.length || !at) continue;
    try {
      let payloads = encoded;
      for (const codec of [...payloadCodecs].reverse()) payloads = await codec.decode(payloads);
      const details: unknown = payloadConverter.fromPayload(payloads[0]!);
      beats.push({ at: Number(at.seconds ?? 0) * 1000 + Math.floor((at.nanos ?? 0) / 1e6), details });
    } catch {
      continue;
    }
  }
  return beats;
}

/**
 * Pending activities whose last attempt failed (a batch refused by a worker without WEBHOOK_URL, a replay the
 * receiver keeps refusing), from the workflow's description: the same facts as the Web UI's pending activities.
 */
export function retryingActivities(
  pending:
    | readonly {
        activityType?: { name?: string | null } | null;
        attempt?: number | null;
        lastWorkerIdentity?: string | null;
        lastFailure?: { message?: string | null } | null;
      }[]
    | null
    | undefined,
): RetryingActivity[] {
  const out: RetryingActivity[] = [];
  for (const p of pending ?? []) {
    if (!p.lastFailure?.message) continue;
    out.push({
      activity: p.activityType?.name ?? 'activity',
      attempt: p.attempt ?? 0,
      worker: p.lastWorkerIdentity || null,
      message: p.lastFailure.message,
    });
  }
  return out;
}
