// Many waiters on one signal (every lookup of a batch, and its waits for the batch's limiter and the worker's pacer,
// listen on the batch's one signal): one 'abort' listener per signal, fanning out to the waiters, costs a Set
// insertion and deletion per waiter instead of an EventTarget listener added and removed, whose removal scans the
// signal's listeners (the limiter's removeEventListener was about 1% of the worker's CPU at 10 lookups/s), and stays
// clear of Node's warning past 10 listeners on one signal.

const waitingOn = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` once when `signal` aborts (not if it already has); the returned function stops that. */
export function whenAborted(signal: AbortSignal, onAbort: () => void): () => void {
  let waiting = waitingOn.get(signal);
  if (!waiting) {
    const waiters = new Set<() => void>();
    waiting = waiters;
    waitingOn.set(signal, waiters);
    signal.addEventListener(
      'abort',
      () => {
        const all = [...waiters];
        waiters.clear();
        for (const each of all) each();
      },
      { once: true },
    );
  }
  const set = waiting;
  set.add(onAbort);
  return () => {
    set.delete(onAbort);
  };
}
