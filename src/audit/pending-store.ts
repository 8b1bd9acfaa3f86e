import { existsSync } from 'node:fs';
import { access, mkdir, opendir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import type { PlannedDecision, StoredMember, WebhookEvent } from '../domain/types';
import type { AuditEntry } from './audit-entry';
import type { ReplayPayload } from '../webhook/payload';

/**
 * A replay the batch could not deliver within its short in-activity retries. It is handed to a
 * per-member activity with its own Temporal retry policy; the payload waits here, on the worker's
 * disk, because it carries personal data that must not travel through workflow history.
 */
export interface PendingReplay {
  line: number;
  memberId: string;
  event: WebhookEvent;
  webhookId: string;
  payload: ReplayPayload;
  /** The audit entry as the batch would have written it; the replay activity completes it. */
  base: AuditEntry;
  /**
   * What the replay is decided again from when it waited (issue 23; all absent in replays stored before): the stored
   * row, when its payload's user was looked up (epoch ms), the run's `onlyChangedSince`, a plan's decision and the
   * requests/s the lookup made again may use when no batch of the run runs on the worker (activities/run-limiters.ts).
   */
  member?: StoredMember;
  lookedUpAt?: number;
  onlyChangedSince?: { time: number; text: string };
  planned?: PlannedDecision;
  recheckRate?: number;
}

/** The lines a backfill handed to replay activities: still waiting, and already recorded by one. */
export interface PendingLines {
  pending: Set<number>;
  settled: Set<number>;
}

export interface PendingStore {
  put(dir: string, replay: PendingReplay): Promise<void>;
  get(dir: string, line: number): Promise<PendingReplay | undefined>;
  /**
   * The replay of `line` is recorded: its payload (personal data) is deleted, and an empty marker stays, so
   * this backfill's batches can tell the audit entries its own replays wrote (counted by the workflow from
   * the replay's result) from deferred entries another backfill left in a shared audit log (counted by the
   * batch like any other recorded line).
   */
  settle(dir: string, line: number): Promise<void>;
  /**
   * Which of `lines` (a batch's own) are pending or settled. Asked by line, never for the whole store: a
   * batch's cost must not grow with the replays the backfill deferred so far.
   */
  lines(dir: string, lines: readonly number[]): Promise<PendingLines>;
  /**
   * Whether this worker sees `dir` at all. The batch that deferred a replay created it; a worker that does not see
   * it (files on another disk) cannot tell a lost replay from one it cannot reach, and another worker may reach it.
   */
  reachable(dir: string): Promise<boolean>;
  /** Deletes every pending replay and settled marker of `dir` (the backfill is over); returns how many. */
  remove(dir: string): Promise<number>;
}

const noLines = (): PendingLines => ({ pending: new Set(), settled: new Set() });

const isReachable = (dir: string): Promise<boolean> =>
  access(dir).then(
    () => true,
    () => false,
  );

const fileOf = (dir: string, line: number) => path.join(dir, `${line}.json`);
const settledFileOf = (dir: string, line: number) => path.join(dir, `${line}.settled`);

/** Lines checked between two turns of the event loop (500 stats, about 1 ms here). */
const EXISTS_SLICE = 250;
const NAME = /^(\d+)\.(json|settled)$/;

/** `wanted`'s pending and settled lines from one read of `dir`; undefined when it holds more than `limit` names. */
async function listedLines(dir: string, wanted: Set<number>, limit: number): Promise<PendingLines | undefined> {
  const found = noLines();
  let dirHandle;
  try {
    dirHandle = await opendir(dir, { bufferSize: 256 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return found; // nothing deferred yet: the common case
    throw err;
  }
  let names = 0;
  // Leaving the loop early (return) closes the directory.
  for await (const entry of dirHandle) {
    if (++names > limit) return undefined;
    const match = NAME.exec(entry.name);
    if (!match || !wanted.has(Number(match[1]))) continue;
    (match[2] === 'json' ? found.pending : found.settled).add(Number(match[1]));
  }
  return found;
}

/**
 * Two stats per line. Synchronous on purpose: a stat of a local file takes a few microseconds, while the promise
 * API's thread pool round trip and its ENOENT error object per answer made 2,000 checks take 37 ms here, and were
 * 13% of the worker's main thread in the bench profile. In slices, so the members of other batches in flight are
 * not held up for the whole batch.
 */
async function checkedLines(dir: string, wanted: Set<number>): Promise<PendingLines> {
  const found = noLines();
  const unique = [...wanted];
  for (let i = 0; i < unique.length; i += EXISTS_SLICE) {
    if (i > 0) await setImmediatePromise();
    for (const line of unique.slice(i, i + EXISTS_SLICE)) {
      if (existsSync(fileOf(dir, line))) found.pending.add(line);
      if (existsSync(settledFileOf(dir, line))) found.settled.add(line);
    }
  }
  return found;
}

export function createFilePendingStore(): PendingStore {
  return {
    async put(dir, replay) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${fileOf(dir, replay.line)}.tmp`;
      await writeFile(tmp, JSON.stringify(replay), { mode: 0o600 });
      await rename(tmp, fileOf(dir, replay.line));
    },
    async get(dir, line) {
      try {
        return JSON.parse(await readFile(fileOf(dir, line), 'utf8')) as PendingReplay;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async settle(dir, line) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(settledFileOf(dir, line), '', { mode: 0o600 });
      await rm(fileOf(dir, line), { force: true });
    },
    async lines(dir, lines) {
      const wanted = new Set(lines.filter((line) => Number.isSafeInteger(line) && line >= 1));
      if (wanted.size === 0) return noLines();
      // The cost of a batch is its own size, whatever lies beside it: the directory is read while it holds at
      // most two names per line asked (a run that deferred a few replays, such as the deletes its delete guard
      // held back at the start: one read), else each line is checked on its own (two stats per line).
      return (await listedLines(dir, wanted, 2 * wanted.size)) ?? (await checkedLines(dir, wanted));
    },
    reachable: isReachable,
    async remove(dir) {
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      await rm(dir, { recursive: true, force: true });
      return names.length;
    },
  };
}
