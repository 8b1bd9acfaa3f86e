import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WebhookEvent } from '../types';
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
}

export interface PendingStore {
  put(dir: string, replay: PendingReplay): Promise<void>;
  get(dir: string, line: number): Promise<PendingReplay | undefined>;
  remove(dir: string, line: number): Promise<void>;
  lines(dir: string): Promise<Set<number>>;
}

const fileOf = (dir: string, line: number) => path.join(dir, `${line}.json`);

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
    async remove(dir, line) {
      await rm(fileOf(dir, line), { force: true });
    },
    async lines(dir) {
      try {
        const names = await readdir(dir);
        return new Set(names.filter((n) => /^\d+\.json$/.test(n)).map((n) => Number(n.slice(0, -5))));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
        throw err;
      }
    },
  };
}
