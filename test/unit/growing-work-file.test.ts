// The work file written while its batches are already read (issue 26 item 1): the same bytes and batch index as the
// whole preparation writes, each batch readable once whole, a retried write that resumes after a crash mid-way.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchAvailability, SourceChangedError, writeGrowingWorkFile } from '../../src/source/growing-work-file';
import { batchIndexPath, batchOffset, buildBatchIndex } from '../../src/source/batch-index';
import { prepareWorkFile, workFileSummaryPath, workLine } from '../../src/source/work-file';
import { createFileWorkStore } from '../../src/store/work-store';

const store = () => createFileWorkStore();
import type { ResolvedSource } from '../../src/source/read-source';
import { mixedCsv } from '../support/growing-source';

let dir: string;
let cases = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'growing-work-file-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setUp(rows: number) {
  const caseDir = path.join(dir, `case-${cases++}`);
  const source = path.join(dir, `source-${cases}.csv`);
  await writeFile(source, mixedCsv(rows));
  return {
    spec: { type: 'csv', path: source } satisfies ResolvedSource,
    growing: path.join(caseDir, 'growing', 'members.jsonl'),
    whole: path.join(caseDir, 'whole', 'members.jsonl'),
  };
}

/** A first attempt that dies once `stopAfter` batches are readable (the worker killed), as a retried write finds it. */
async function crashAfter(spec: ResolvedSource, workFile: string, stopAfter: number): Promise<void> {
  const crash = new Error('worker died');
  const onBatch = (readable: number) => {
    if (readable === stopAfter) throw crash;
  };
  await expect(writeGrowingWorkFile({ spec, workFile, batchSize: 100, onBatch })).rejects.toBe(crash);
}

describe('writeGrowingWorkFile', () => {
  it.each([
    [1, 1],
    [25, 10],
    [2_000, 100],
    [2_001, 100],
    [2_099, 100],
  ])('%i rows in batches of %i: the bytes, index and counts of the whole preparation', async (rows, batchSize) => {
    const { spec, growing, whole } = await setUp(rows);
    const grown = await writeGrowingWorkFile({ spec, workFile: growing, batchSize });
    const summary = await prepareWorkFile(spec, whole);
    const batches = await buildBatchIndex(whole, batchSize);
    expect(grown).toEqual({ ...summary, batches });
    // Members, duplicates and bad rows were there to count.
    if (rows > 10) expect(summary).toMatchObject({ members: expect.any(Number), skipped: expect.any(Number) });
    if (rows > 10) expect(Math.min(summary.members, summary.skipped)).toBeGreaterThan(0);
    expect(await readFile(growing)).toEqual(await readFile(whole));
    expect(await readFile(batchIndexPath(growing, batchSize))).toEqual(
      await readFile(batchIndexPath(whole, batchSize)),
    );
    expect(JSON.parse(await readFile(workFileSummaryPath(growing), 'utf8'))).toEqual(summary);
    expect((await stat(growing)).mode & 0o777).toBe(0o600);
    expect(await batchAvailability(growing, batchSize, batches - 1)).toBe('ready');
    expect(await batchAvailability(growing, batchSize, batches)).toBe('beyond');
  });

  it('makes each batch readable once whole, while the rest is still being written', async () => {
    const { spec, growing } = await setUp(1_050);
    const store = createFileWorkStore();
    const seen: Array<{ readable: number; states: string[] }> = [];
    const states = async () => Promise.all([0, 1, 2, 10].map((batch) => batchAvailability(growing, 100, batch)));
    let pendingCheck: Promise<void> = Promise.resolve();
    await writeGrowingWorkFile({
      spec,
      workFile: growing,
      batchSize: 100,
      onBatch: (readable) => {
        if (readable === 1 || readable === 2)
          pendingCheck = pendingCheck.then(async () => {
            seen.push({ readable, states: await states() });
          });
      },
    });
    await pendingCheck;
    // Checked right after batch 0 (then 1) became readable; the writer may have gone on meanwhile, never back.
    expect(seen[0]!.states[0]).toBe('ready');
    expect(seen[0]!.states[3]).toBe('waiting');
    expect(seen[1]!.states.slice(0, 2)).toEqual(['ready', 'ready']);
    expect(await states()).toEqual(['ready', 'ready', 'ready', 'ready']);
    expect(await batchAvailability(growing, 100, 11)).toBe('beyond');
    // Read through the store as a batch reads it: batch 10 is the short last one.
    expect(await store.readBatch(growing, 100, 10)).toHaveLength(50);
  });

  it.each([1, 3, 7])(
    'a write stopped after %i batches resumes: the same file, index and exact counts, batches read before unchanged',
    async (stopAfter) => {
      const { spec, growing, whole } = await setUp(1_234);
      const store = createFileWorkStore();
      await crashAfter(spec, growing, stopAfter);
      const before = await store.readBatch(growing, 100, stopAfter - 1);
      expect(await batchAvailability(growing, 100, stopAfter)).toBe('waiting');
      // What a crashed attempt leaves past its last whole batch: half a line, not yet in the index.
      await writeFile(growing, '{"line":99999,"member":', { flag: 'a' });

      const grown = await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 });
      const summary = await prepareWorkFile(spec, whole);
      expect(grown).toEqual({ ...summary, batches: 13 });
      expect(await readFile(growing)).toEqual(await readFile(whole));
      await buildBatchIndex(whole, 100);
      expect(await readFile(batchIndexPath(growing, 100))).toEqual(await readFile(batchIndexPath(whole, 100)));
      expect(await store.readBatch(growing, 100, stopAfter - 1)).toEqual(before);
    },
  );

  it('a resumed write cancelled while it reads again the rows it keeps stops there; the next one finishes it exact', async () => {
    // A retried normaliser cancelled (its run cancelled or terminated: its next heartbeat tells it) while it re-reads.
    const { spec, growing, whole } = await setUp(1_234);
    await crashAfter(spec, growing, 5);
    const before = await store().readBatch(growing, 100, 4);
    const cancel = new AbortController();
    const cancelled = new Error('cancelled: the run continues as new');
    cancel.abort(cancelled);
    const onBatch = () => {
      throw new Error('no batch is written once cancelled');
    };
    await expect(
      writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100, signal: cancel.signal, onBatch }),
    ).rejects.toBe(cancelled);
    expect(await store().readBatch(growing, 100, 4)).toEqual(before);
    expect(await batchAvailability(growing, 100, 5)).toBe('waiting');

    const grown = await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 });
    expect(grown).toEqual({ ...(await prepareWorkFile(spec, whole)), batches: 13 });
    expect(await readFile(growing)).toEqual(await readFile(whole));
    await buildBatchIndex(whole, 100);
    expect(await readFile(batchIndexPath(growing, 100))).toEqual(await readFile(batchIndexPath(whole, 100)));
  });

  it('a stuck attempt that writes on beside its retry: the same file and index, not two interleaved', async () => {
    const { spec, growing, whole } = await setUp(3_000);
    // The retry starts (and cuts the files back to its resume point) while the first attempt is mid-way and goes on.
    let retry: Promise<PromiseSettledResult<unknown>[]> | undefined;
    const stuck = await Promise.allSettled([
      writeGrowingWorkFile({
        spec,
        workFile: growing,
        batchSize: 100,
        onBatch: (readable) => {
          if (readable === 3)
            retry ??= Promise.allSettled([writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 })]);
        },
      }),
    ]);
    // Both may finish (the same summary), or the one whose summary's rename lost the race fails (Temporal retries it
    // and finds the summary): one at least finishes.
    const outcomes = [...stuck, ...(await retry!)].map((s) => s.status);
    expect(outcomes).toContain('fulfilled');
    await prepareWorkFile(spec, whole);
    await buildBatchIndex(whole, 100);
    expect(await readFile(growing)).toEqual(await readFile(whole));
    expect(await readFile(batchIndexPath(growing, 100))).toEqual(await readFile(batchIndexPath(whole, 100)));
  });

  it('a batch read while a retry has cut the file back is refused, not returned short', async () => {
    const { spec, growing } = await setUp(1_000);
    await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 });
    const whole = await store().readBatch(growing, 100, 4);
    expect(whole).toHaveLength(100);
    // The file cut back to the start of batch 4 plus half of it, at a line's end, as a retried write leaves it.
    const halfway = Buffer.from(await readFile(growing))
      .subarray(0, await batchOffset(growing, 100, 4))
      .toString()
      .concat(
        whole
          .slice(0, 50)
          .map((e) => workLine(e))
          .join(''),
      );
    await writeFile(growing, halfway);
    await expect(store().readBatch(growing, 100, 4)).rejects.toThrow('batch 4 is not whole yet');
  });

  it.each([
    ['a row changed before the kept batches end', (text: string) => text.replace('u5@example.com', 'v5@example.com')],
    ['the source cut short', (text: string) => text.split('\n').slice(0, 150).join('\n') + '\n'],
  ])('a retried write refuses a source that changed under the kept batches: %s', async (_name, change) => {
    const { spec, growing } = await setUp(1_234);
    await crashAfter(spec, growing, 3);
    await writeFile(spec.path, change(await readFile(spec.path, 'utf8')));
    await expect(writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 })).rejects.toThrow(SourceChangedError);
  });

  it('a retried write over an unchanged source with a change only after the kept batches goes on', async () => {
    const { spec, growing } = await setUp(1_234);
    await crashAfter(spec, growing, 3);
    await writeFile(spec.path, (await readFile(spec.path, 'utf8')).replace('u1200@example.com', 'w@example.com'));
    expect(await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 })).toMatchObject({ batches: 13 });
  });

  it('a quoted field never closed at the end is one bad row here, while the whole preparation stops on it', async () => {
    const { spec, growing, whole } = await setUp(250);
    await writeFile(
      spec.path,
      `${await readFile(spec.path, 'utf8')}m-last,,x@example.com,no,no,"Kim, Jun\nm-gone,,,,\n`,
      {
        flag: 'w',
      },
    );
    await expect(prepareWorkFile(spec, whole)).rejects.toThrow(/line 252 is never closed/);
    const grown = await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 100 });
    const lines = (await readFile(growing, 'utf8')).trimEnd().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toEqual({
      line: 252,
      skip: 'quoted field never closed: the rest of the file is one bad record (truncated or corrupt file)',
    });
    expect(grown).toMatchObject({ rows: 251, batches: 3 });
    expect(await store().readBatch(growing, 100, 2)).toHaveLength(51);
  });

  it('a finished work set is not written again', async () => {
    const { spec, growing } = await setUp(300);
    const first = await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 50 });
    const { mtimeMs } = await stat(growing);
    await rm(spec.path);
    expect(await writeGrowingWorkFile({ spec, workFile: growing, batchSize: 50 })).toEqual(first);
    expect((await stat(growing)).mtimeMs).toBe(mtimeMs);
  });
});
