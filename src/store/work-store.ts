import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { WorkEntry } from '../domain/types';
import { batchOffset, buildBatchIndex } from '../source/batch-index';
import type { ResolvedSource } from '../source/read-source';
import {
  batchAvailability,
  writeGrowingWorkFile,
  type BatchAvailability,
  type GrowingWorkFile,
  type GrownWorkFile,
} from '../source/growing-work-file';
import {
  prepareWorkFile,
  readWorkBatch,
  type AppendEntries,
  type PrepareSummary,
  type SelectEntry,
} from '../source/work-file';

/**
 * The normalised work set of one backfill and its batch boundaries. `key` is the run's `paths.workFile`: a
 * file path on the file store, an opaque name (the same string) on the PostgreSQL store, so the workflow
 * state is the same on both and a run started on either keeps its history.
 */
export interface WorkStore {
  /**
   * Normalises the source into the work set under `key` (idempotent: a set already complete is not written
   * again, its stored summary is returned). Only the worker that runs the preparation reads the source.
   */
  write(
    spec: ResolvedSource,
    key: string,
    /** Keeps, changes or drops each source entry: a run over part of the source (retry, plan, verify). */
    select: SelectEntry | undefined,
    owner: { workflowId: string },
    after?: AppendEntries,
  ): Promise<PrepareSummary>;
  /**
   * Normalises the source into the work set under `key` while its batches are already read (the file store:
   * src/source/growing-work-file.ts; PostgreSQL: src/store/postgres-growing-work.ts); resumes a write an earlier
   * attempt left. Absent: the store prepares whole.
   */
  writeGrowing?(
    growing: Omit<GrowingWorkFile, 'workFile'> & { key: string; owner: { workflowId: string } },
  ): Promise<GrownWorkFile>;
  /** Whether a batch of a work set being written with writeGrowing can be read yet (or lies beyond its end). */
  batchAvailability?(key: string, batchSize: number, batch: number): Promise<BatchAvailability>;
  /** Fixes the batch boundaries for `batchSize` (idempotent); returns the number of batches. */
  buildBatches(key: string, batchSize: number): Promise<number>;
  /**
   * Batch `batch` (0-based) of size `batchSize`: the same arguments always give the same entries. A verify run's
   * set holds verify entries, any other the source's: the batch activity narrows them (activities/batch-run.ts).
   */
  readBatch(key: string, batchSize: number, batch: number): Promise<WorkEntry[]>;
  /** Deletes the work set under `key` (personal data); returns how many rows (file: files) it removed. */
  remove(key: string): Promise<number>;
}

/** Whether the work file's batch index holds batch `batch`. */
async function hasBatch(key: string, batchSize: number, batch: number): Promise<boolean> {
  return batchOffset(key, batchSize, batch).then(
    () => true,
    (err: unknown) => {
      if (err instanceof RangeError) return false;
      throw err;
    },
  );
}

export function createFileWorkStore(): WorkStore {
  return {
    write: (spec, key, select, _owner, after) => prepareWorkFile(spec, key, select, after),
    writeGrowing: ({ key, owner: _owner, ...growing }) => writeGrowingWorkFile({ ...growing, workFile: key }),
    batchAvailability: (key, batchSize, batch) => batchAvailability(key, batchSize, batch),
    buildBatches: (key, batchSize) => buildBatchIndex(key, batchSize),
    async readBatch(key, batchSize, batch) {
      const offset = await batchOffset(key, batchSize, batch);
      const { entries } = await readWorkBatch(key, offset, batchSize);
      // Every batch but the last is whole. One that comes back short was read while a retried normaliser had cut the
      // file back to rewrite it (src/source/growing-work-file.ts): failing, the batch is read again once it is
      // whole, where returning fewer members would leave the others out of the run.
      if (entries.length < batchSize && (await hasBatch(key, batchSize, batch + 1)))
        throw new Error(`work file ${JSON.stringify(key)}: batch ${batch} is not whole yet (being rewritten)`);
      return entries;
    },
    async remove(key) {
      // The work file, its summary, its batch indexes and any temp file: every name that starts with its own.
      const dir = path.dirname(key);
      const base = path.basename(key);
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      const mine = names.filter((name) => name === base || name.startsWith(`${base}.`));
      await Promise.all(mine.map((name) => rm(path.join(dir, name), { force: true })));
      return mine.length;
    },
  };
}
