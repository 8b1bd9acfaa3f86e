// One HTTP exchange through undici's `dispatch` with a handler of our own, for the two requests every member makes
// (the lookup, and a replay's POST), instead of undici's `request`. `request` builds an AsyncResource and a
// Readable stream per answer, and reading the body (`text()`, `dump()`) goes through the stream and more promises:
// with AsyncLocalStorage active, as in a Temporal worker, each of those pays async hooks. Here an answer is its
// status, headers and, when asked for, its body's text, resolved once, when the body has ended.
import type { Dispatcher } from 'undici';
import type { DeadlineSignal } from './request-deadline';

/** An answer's headers, as undici parses them (lower-case names; a repeated header an array). */
export type AnswerHeaders = Record<string, string | string[] | undefined>;

export interface Answer {
  statusCode: number;
  headers: AnswerHeaders;
  /** The body as UTF-8 text (a leading BOM dropped, as undici's `body.text()`), when `keepBody` asked for it. */
  text?: string;
}

export interface ExchangeOptions {
  /** Whether the body of an answer with this status is read (else it is drained and dropped). */
  keepBody: (statusCode: number) => boolean;
  /**
   * A body not kept is read up to this many bytes and dropped, so the keep-alive connection is reused; past it (or a
   * content-length past it) the connection is closed instead, as undici's `body.dump({ limit })` does.
   */
  drainLimit: number;
  /** Aborts the exchange (the request's deadline, which also follows the caller's signal). */
  signal: DeadlineSignal;
  /** Told of the answer's status and headers as they arrive, before its body (whatever then happens to it). */
  onStatus?: (statusCode: number, headers: AnswerHeaders) => void;
}

/**
 * Sends one request. Resolves with the answer once its body has ended; a body that is dropped resolves with the
 * status whatever happens to the rest of it. Rejects with undici's error (or the signal's reason) when the exchange
 * fails before the answer's status, or while a kept body is read.
 */
export function exchange(
  dispatcher: Dispatcher,
  request: Dispatcher.DispatchOptions,
  o: ExchangeOptions,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    new Exchange(o, resolve, reject).start(dispatcher, request);
  });
}

class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private answer: Answer | undefined;
  private keep = false;
  private chunks: Buffer[] = [];
  private length = 0;
  private settled = false;

  constructor(
    private readonly o: ExchangeOptions,
    private readonly resolve: (answer: Answer) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  start(dispatcher: Dispatcher, request: Dispatcher.DispatchOptions): void {
    if (this.o.signal.aborted) {
      this.reject(this.o.signal.reason);
      return;
    }
    this.o.signal.once('abort', this.onAbort);
    try {
      dispatcher.dispatch(request, this);
    } catch (err) {
      this.fail(err);
    }
  }

  private readonly onAbort = (): void => {
    const reason = this.o.signal.reason;
    if (this.controller) this.controller.abort(reason as Error);
    else this.fail(reason);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Aborted between dispatch and the connection: undici gets the reason now.
    if (this.settled) controller.abort(this.o.signal.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: AnswerHeaders): void {
    if (statusCode < 200) return; // informational: the answer follows
    this.answer = { statusCode, headers };
    try {
      this.o.onStatus?.(statusCode, headers);
    } catch (err) {
      this.fail(err);
      controller.abort(err as Error);
      return;
    }
    this.keep = this.o.keepBody(statusCode);
    if (this.keep) return;
    const declared = Number(headers['content-length']);
    if (declared > this.o.drainLimit) this.dropConnection(controller);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.answer === undefined) return;
    if (this.keep) {
      this.chunks.push(chunk);
      this.length += chunk.length;
      return;
    }
    this.length += chunk.length;
    if (this.length > this.o.drainLimit) this.dropConnection(controller);
  }

  onResponseEnd(): void {
    const answer = this.answer;
    if (answer === undefined) {
      this.fail(new Error('the exchange ended without an answer'));
      return;
    }
    if (this.keep) answer.text = utf8Text(this.chunks, this.length);
    this.finish(answer);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // A body dropped: its status stands, whatever happened to the rest of it.
    if (this.answer !== undefined && !this.keep) this.finish(this.answer);
    else this.fail(err);
  }

  /** A body too long to drain: the status stands and the connection is closed instead of reused. */
  private dropConnection(controller: Dispatcher.DispatchController): void {
    const answer = this.answer!;
    this.finish(answer);
    controller.abort(new Error('answer body over the drain limit'));
  }

  private finish(answer: Answer): void {
    if (this.settled) return;
    this.settled = true;
    this.o.signal.removeListener('abort', this.onAbort);
    this.resolve(answer);
  }

  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.o.signal.removeListener('abort', this.onAbort);
    this.reject(err);
  }
}

/** The chunks as UTF-8 text without a leading byte order mark (what undici's `body.text()` returns). */
export function utf8Text(chunks: readonly Buffer[], length: number): string {
  if (chunks.length === 0 || length === 0) return '';
  const buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
  const start = buffer.length > 2 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf ? 3 : 0;
  return buffer.toString('utf8', start);
}
