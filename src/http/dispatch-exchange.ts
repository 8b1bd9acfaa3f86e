// The machinery shared by the HTTP exchanges that drive undici's dispatch API directly (the Channel Talk lookup
// and the webhook delivery): a timeout over headers and body, aborts asked for before or after undici hands out
// the request's controller, the caller's signal, settling exactly once, and draining an unwanted response body up
// to a limit (past it the connection is closed instead). What a status, a body, a timeout or a network error
// means is left to the subclass. No stream, no AbortController and no URL parsing per request.
import type { Dispatcher } from 'undici';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * One request's handler. It settles as `request()` followed by `body.text()` (a body the subclass keeps) or
 * `body.dump({ limit })` (any other) did: the timeout covers headers and body; while an unkept body is drained
 * the status is the verdict, whatever happens to the rest (a body over the limit closes the connection); any
 * other failure is the caller's abort reason when the caller's signal aborted, else a timeout or network error.
 */
export abstract class DispatchExchange<T> implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  /** An abort asked for before undici handed out the request's controller. */
  private pendingAbort: { reason: unknown } | undefined;
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  private settled = false;
  /** Whether the body is being kept (for `bodyOutcome`) rather than drained. */
  private keeping = false;
  private chunks: Buffer[] | undefined;
  /** The final status; 0 until it arrives. */
  protected status = 0;
  /** Response body bytes seen so far. */
  private bytes = 0;

  constructor(
    private readonly resolve: (outcome: T) => void,
    private readonly reject: (reason: unknown) => void,
    private readonly signal: AbortSignal | undefined,
    protected readonly timeoutMs: number,
    private readonly drainLimitBytes: number,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.abort(this.timeoutError());
    }, timeoutMs);
    if (signal) watchAbort(signal, this);
  }

  /** Reads the final status's headers; true keeps the body for `bodyOutcome`, false drains it. */
  protected abstract readHeaders(headers: ResponseHeaders): boolean;
  /** The verdict of the status alone (a drained body). */
  protected abstract statusOutcome(): T;
  /** The verdict of a kept body, read whole. */
  protected bodyOutcome(_chunks: Buffer[], _length: number): T {
    return this.statusOutcome();
  }
  /** What the timer aborts the request with (it never reaches the outcome). */
  protected abstract timeoutError(): Error;
  protected abstract timeoutOutcome(): T;
  protected abstract networkErrorOutcome(err: Error): T;

  abort(reason: unknown): void {
    if (this.settled) return;
    if (this.controller) this.controller.abort(reason as Error);
    else this.pendingAbort ??= { reason };
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort) controller.abort(this.pendingAbort.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (statusCode < 200) return; // informational: the real answer follows
    this.status = statusCode;
    this.keeping = this.readHeaders(headers);
    if (this.keeping) {
      this.chunks = [];
    } else {
      const length = Number(headers['content-length']);
      if (Number.isFinite(length) && length > this.drainLimitBytes) this.dropRest(controller);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.keeping) this.chunks?.push(chunk);
    else if (this.bytes > this.drainLimitBytes) this.dropRest(controller);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settle(this.keeping ? this.bodyOutcome(this.chunks ?? [], this.bytes) : this.statusOutcome());
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.settled) return;
    // A failure while a drained body was being read does not change what the status said.
    if (this.status !== 0 && !this.keeping) this.settle(this.statusOutcome());
    else if (this.signal?.aborted) this.fail(this.signal.reason ?? err);
    else if (this.timedOut) this.settle(this.timeoutOutcome());
    else this.settle(this.networkErrorOutcome(err));
  }

  private dropRest(controller: Dispatcher.DispatchController): void {
    this.settle(this.statusOutcome());
    controller.abort(new Error('response body over the drain limit'));
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.chunks = undefined;
    clearTimeout(this.timer);
    if (this.signal) unwatchAbort(this.signal, this);
    return true;
  }

  private settle(outcome: T): void {
    if (this.finish()) this.resolve(outcome);
  }

  private fail(reason: unknown): void {
    if (this.finish()) this.reject(reason);
  }
}

/**
 * Runs one exchange on a dispatcher: resolves with its outcome, or rejects with the caller's abort reason.
 * `create` builds the handler (its timer starts then), right before the request is dispatched.
 */
export function runExchange<T>(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  create: (resolve: (outcome: T) => void, reject: (reason: unknown) => void) => DispatchExchange<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const exchange = create(resolve, reject);
    try {
      dispatcher.dispatch(options, exchange);
    } catch (err) {
      exchange.onResponseError(undefined, err as Error); // undici reports its errors through the handler; just in case
    }
  });
}

interface Abortable {
  abort(reason: unknown): void;
}

// Every request of a batch listens on the batch's one signal. One listener per signal, fanning out to the
// exchanges in flight, costs a Set insertion per request instead of an EventTarget listener add and remove.
const inFlightBySignal = new WeakMap<AbortSignal, Set<Abortable>>();

function watchAbort(signal: AbortSignal, exchange: Abortable): void {
  let inFlight = inFlightBySignal.get(signal);
  if (!inFlight) {
    const watched = new Set<Abortable>();
    inFlight = watched;
    inFlightBySignal.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        for (const each of [...watched]) each.abort(signal.reason);
      },
      { once: true },
    );
  }
  inFlight.add(exchange);
}

function unwatchAbort(signal: AbortSignal, exchange: Abortable): void {
  inFlightBySignal.get(signal)?.delete(exchange);
}
