// How a pause reaches this worker's running batches sooner than their next heartbeat. Temporal tells a batch that
// it is cancelled only in the answer to a heartbeat, and a batch heartbeats rarely under a low budget
// (activities/heartbeat-pace.ts: about every 10 s at 10 lookups/s). When the workflow pauses, it calls the worker's
// `batchControl.paused` sink (workflows/backfill.ts) in the process that ran that workflow task; the sink tells the
// batches of that workflow running in this process, which then heartbeat at every tick for a few seconds and so learn
// of the cancellation within about a second. Batches on other workers learn of it at their next heartbeat.

import type { InjectedSinks } from '@temporalio/worker';
import type { Sinks } from '@temporalio/workflow';

/** The sink the workflow calls when it pauses (registered by src/worker-setup.ts). */
export interface BatchControlSinks extends Sinks {
  batchControl: { paused(): void };
}

export class PauseNotices {
  private readonly listeners = new Map<string, Set<() => void>>();

  /** Calls `onPause` when the workflow `workflowId` pauses, until the returned function is called. */
  listen(workflowId: string, onPause: () => void): () => void {
    let set = this.listeners.get(workflowId);
    if (!set) this.listeners.set(workflowId, (set = new Set()));
    set.add(onPause);
    return () => {
      set.delete(onPause);
      if (set.size === 0) this.listeners.delete(workflowId);
    };
  }

  /** The workflow `workflowId` paused. */
  paused(workflowId: string): void {
    for (const onPause of this.listeners.get(workflowId) ?? []) onPause();
  }
}

/** The worker's side of the sink (Worker.create's `sinks`): never called on replay. */
export function pauseNoticeSinks(notices: PauseNotices): InjectedSinks<BatchControlSinks> {
  return { batchControl: { paused: { fn: (info) => notices.paused(info.workflowId), callDuringReplay: false } } };
}
