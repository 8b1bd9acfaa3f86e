// The batch index over work files larger than its read chunk (1 MiB): every batch starts where a line starts,
// including lines that span two chunks and a chunk that ends exactly on a line end.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchOffset, buildBatchIndex } from '../../src/source/batch-index';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'batch-index-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Byte offsets of every line start, the slow and obvious way. */
function lineStarts(text: string): number[] {
  const starts: number[] = [];
  let offset = 0;
  for (const line of text.split('\n').slice(0, -1)) {
    starts.push(offset);
    offset += Buffer.byteLength(line, 'utf8') + 1;
  }
  return starts;
}

const MiB = 1024 * 1024;
const cases: [string, string[]][] = [
  [
    'short lines over several chunks (multi-byte text)',
    Array.from({ length: 30_000 }, (_, i) => `{"line":${i},"n":"정${'x'.repeat(i % 97)}"}`),
  ],
  ['a line longer than a chunk', ['{"a":1}', `{"long":"${'y'.repeat(2 * MiB + 17)}"}`, '{"b":2}', '{"c":3}']],
  ['a chunk that ends exactly on a line end', [`{"p":"${'z'.repeat(MiB - 9)}"}`, '{"next":1}', '{"last":2}']],
];

describe('buildBatchIndex', () => {
  it.each(cases)('%s', async (name, lines) => {
    const text = lines.map((l) => `${l}\n`).join('');
    if (name.includes('exactly')) expect(Buffer.byteLength(lines[0]! + '\n')).toBe(MiB);
    const starts = lineStarts(text);
    for (const batchSize of [1, 3, 1000]) {
      const workFile = path.join(dir, `${name.replace(/\W+/g, '-')}-${batchSize}.jsonl`);
      await writeFile(workFile, text);
      const batches = await buildBatchIndex(workFile, batchSize);
      expect(batches).toBe(Math.ceil(lines.length / batchSize));
      // Every batch of a small index; of a large one, the first and last hundred and a spread between them.
      const ks = Array.from({ length: batches }, (_, k) => k).filter(
        (k) => k < 100 || k >= batches - 100 || k % 97 === 0,
      );
      for (const k of ks) expect(await batchOffset(workFile, batchSize, k)).toBe(starts[k * batchSize]);
      await expect(batchOffset(workFile, batchSize, batches)).rejects.toThrow(/beyond the end/);
    }
  });
});
