import { log, patched, proxyActivities } from '@temporalio/workflow';
import type { BackfillActivities } from '../activities';
import type { RunWait } from '../src/audit/run-wait';
import type { BackfillState } from './backfill-state';

// Each receiver outage goes in the audit log when it ends (src/audit/run-wait.ts), so that the report shows it, also
// after the workflow is gone: since when, until when, how it ended, what waited. The state says what the outage was
// (BackfillState.receiverWait); this records it through an activity, under its patch.

const { recordWait } = proxyActivities<BackfillActivities>({
  summary: 'record a wait for the receiver in the audit log',
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, maximumInterval: '30 seconds' },
});

// Runs recorded before a receiver outage was recorded in the audit log when it ended.
const WAIT_RECORD_PATCH = 'receiver-wait-record-v1';

export class ReceiverWaits {
  private readonly recording: Promise<void>[] = [];

  constructor(private readonly run: BackfillState) {}

  /** Runs `change`; if it ends the receiver outage under way, records the outage, ended as `ended` says. */
  ending<T>(ended: RunWait['ended'], change: () => T): T {
    const wait = this.run.receiverWait(ended, Date.now());
    const result = change();
    if (wait && !this.run.s.receiverDown) this.record(wait);
    return result;
  }

  /**
   * The pause reason once the endpoint has been down longer than the run allows (at `nowMs`), else null; the outage
   * is then recorded as ended by the pause (it stays shown while paused; a resume does not record it again).
   */
  pauseIfExpired(nowMs: number): string | null {
    const reason = this.run.receiverOutageExpired(nowMs);
    if (!reason) return null;
    this.record(this.run.receiverWait('paused', nowMs));
    this.run.receiverWaitRecorded();
    return reason;
  }

  /** Resolves once every recording started has ended (recorded, or given up with a warning). */
  async settled(): Promise<void> {
    await Promise.all(this.recording);
  }

  private record(wait: RunWait | undefined): void {
    if (!wait || !patched(WAIT_RECORD_PATCH)) return;
    const recording = recordWait({ paths: this.run.s.prepared.paths, wait }).catch((err: unknown) =>
      log.warn('the receiver outage could not be recorded in the audit log', { ...wait, error: String(err) }),
    );
    this.recording.push(recording);
  }
}
