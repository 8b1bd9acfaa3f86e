// Record before you move on, wait for the store (issue 28). A batch that cannot write its audit or pending store
// (PostgreSQL failing over, a full disk, a read-only remount) used to fail whole and be redone: every member it
// had already looked up and replayed was looked up and replayed again. Now a write that fails because the store
// is away is retried with backoff, the outcomes it holds kept in memory, and nothing new is looked up or sent
// until the store takes writes again; the activity keeps heartbeating meanwhile. Any other error still throws.
import { setTimeout as sleep } from 'node:timers/promises';
import { whenAborted } from '../src/abort-fanout';
import type { AuditStore } from '../src/audit/audit-store';
import type { RunWait } from '../src/audit/run-wait';

/** Node and PostgreSQL error codes that say the store is away (or full, or read-only), not that the write is wrong. */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  // network, to PostgreSQL
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  // disk
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'EIO',
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now (starting up, recovering), too_many_connections,
  // read_only_sql_transaction (a standby after a failover), and the connection_exception class
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '25006',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

/** node-postgres reports a connection lost mid-query by these messages, without a code. */
const PG_CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

/** Whether an error from a store call means the store is unavailable (wait for it) rather than a bug (throw). */
export function isStoreUnavailable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
    if (typeof message === 'string' && PG_CONNECTION_LOST.test(message)) return true;
    current = cause;
  }
  return false;
}

/** Wait before the next try of a store write after `failures` failed tries: 250 ms doubling, at most 5 s. */
export function storeBackoffMs(failures: number): number {
  return Math.min(5_000, 250 * 2 ** Math.max(0, failures - 1));
}

export interface StoreGate {
  /**
   * Runs `write` until it succeeds, waiting with backoff while the store is unavailable (isStoreUnavailable);
   * rethrows any other error, and rejects when the gate's signal aborts (the activity is cancelled).
   */
  persist<T>(write: () => Promise<T>): Promise<T>;
  /** Resolves at once while the store takes writes; while a write waits for it, once the store is back. */
  open(): Promise<void>;
  /** Since when (ms since the epoch) a write has been waiting for the store; undefined while none is. */
  unavailableSince(): number | undefined;
  /** The waits that ended with the store back (ms since the epoch), oldest first, each handed out once. */
  takeWaits(): { since: number; until: number }[];
}

export interface StoreGateOptions {
  /** Aborts every wait (the activity's cancellation). */
  signal: AbortSignal;
  now?: () => number;
  /** Told once when the store goes away (the first failed write), and once when it is back. */
  onUnavailable?: (err: unknown) => void;
  onBack?: (waitedMs: number) => void;
  /**
   * Called while a write waits between tries, at least every `waitingEveryMs`, with since when the store is away (a
   * batch heartbeats here: a batch waiting at its first reads has no other heartbeat, and the backoff grows to 5 s).
   */
  whileWaiting?: (sinceMs: number) => void;
  /** How often `whileWaiting` is called during one wait between tries (default: every second). */
  waitingEveryMs?: number;
  backoffMs?: (failures: number) => number;
}

/** See StoreGateOptions.waitingEveryMs. */
const WAITING_EVERY_MS = 1_000;

export function createStoreGate(o: StoreGateOptions): StoreGate {
  const now = o.now ?? Date.now;
  const backoff = o.backoffMs ?? storeBackoffMs;
  let waitingWrites = 0;
  let since: number | undefined;
  let back: { promise: Promise<void>; resolve: () => void } | undefined;
  const ended: { since: number; until: number }[] = [];
  const aborted = abortedPromise(o.signal);

  const wentAway = (err: unknown) => {
    waitingWrites += 1;
    if (since !== undefined) return;
    since = now();
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    back = { promise, resolve };
    o.onUnavailable?.(err);
  };
  /** A write stopped waiting: it went through (`written`), or it gave up (cancelled, another error). */
  const stoppedWaiting = (written: boolean) => {
    waitingWrites -= 1;
    if (waitingWrites > 0 || since === undefined) return;
    const until = now();
    const waited = until - since;
    if (written) ended.push({ since, until });
    since = undefined;
    back?.resolve();
    back = undefined;
    if (written) o.onBack?.(waited);
  };

  /**
   * Waits `ms` before the next try, telling `whileWaiting` at the start and then every waitingEveryMs: with a
   * heartbeat timeout of 5 s, one heartbeat per try (up to 5 s apart, plus the failed try) timed batches out while
   * they waited and Temporal ran them again beside the first attempt (deliveries twice).
   */
  const waitBetweenTries = async (ms: number) => {
    const every = o.waitingEveryMs ?? WAITING_EVERY_MS;
    for (let left = ms; left > 0; left -= every) {
      if (since !== undefined) o.whileWaiting?.(since);
      await Promise.race([sleep(Math.min(left, every)), aborted()]);
    }
  };

  return {
    async persist(write) {
      let failures = 0;
      let written = false;
      try {
        for (;;) {
          try {
            const result = await write();
            written = true;
            return result;
          } catch (err) {
            if (!isStoreUnavailable(err) || o.signal.aborted) throw err;
            if (failures === 0) wentAway(err);
            failures += 1;
            await waitBetweenTries(backoff(failures));
          }
        }
      } finally {
        if (failures > 0) stoppedWaiting(written);
      }
    },
    async open() {
      o.signal.throwIfAborted();
      if (!back) return;
      await Promise.race([back.promise, aborted()]);
    },
    unavailableSince: () => since,
    takeWaits: () => ended.splice(0),
  };
}

/**
 * One promise that rejects with the signal's reason when it aborts, made on first use. Every waiting write and
 * every member waiting for the gate races against it, where one listener a waiter put 11 and more on the activity's
 * signal while a batch's members waited (Node's MaxListenersExceededWarning); it listens through the signal's one
 * shared listener (src/abort-fanout.ts).
 */
function abortedPromise(signal: AbortSignal): () => Promise<never> {
  let rejection: Promise<never> | undefined;
  return () => {
    if (!rejection) {
      rejection = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        else whenAborted(signal, () => reject(signal.reason));
      });
      rejection.catch(() => undefined); // an abort with nobody waiting is not an unhandled rejection
    }
    return rejection;
  };
}

/**
 * Records the gate's waits that ended with the store back in the audit log (src/audit/run-wait.ts), for the report;
 * `who` names the batch or replay that waited. Retried like any write while the store is away; any other failure
 * (or a cancellation) is only logged (`warn`): the outcomes matter, the record of the wait is for reading.
 */
export async function recordStoreWaits(
  audit: AuditStore,
  auditPath: string,
  gate: StoreGate,
  who: Pick<RunWait, 'batch' | 'line'>,
  warn: (message: string, meta: Record<string, unknown>) => void,
): Promise<void> {
  for (const { since, until } of gate.takeWaits()) {
    const wait: RunWait = {
      kind: 'store-unavailable',
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      ended: 'back',
      ...who,
    };
    // Through the gate: the first query after the store came back may still meet a connection it dropped.
    await gate
      .persist(() => audit.recordWait(auditPath, wait))
      .catch((err: unknown) =>
        warn('the wait for the store could not be recorded in the audit log', {
          ...wait,
          code: (err as { code?: unknown }).code ?? null,
        }),
      );
  }
}
