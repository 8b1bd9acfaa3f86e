import { createReadStream } from 'node:fs';
import { open, rename, stat, writeFile } from 'node:fs/promises';

/**
 * Byte offsets of every batch in a work file, so that batch k can be read directly (and several
 * batches can run at once) without the workflow ever holding offsets or rows. Eight bytes a batch.
 */
export const batchIndexPath = (workFile: string, batchSize: number) => `${workFile}.b${batchSize}.idx`;

/** Builds the index once (idempotent); returns the number of batches. */
export async function buildBatchIndex(workFile: string, batchSize: number): Promise<number> {
  const indexFile = batchIndexPath(workFile, batchSize);
  const existing = await stat(indexFile).catch(() => undefined);
  if (existing) return existing.size / 8;

  const offsets: number[] = [];
  let position = 0;
  let entries = 0;
  let lineStart = true;
  // Line ends are found with Buffer#indexOf (memchr), not byte by byte in JS: a tenth of the time for a million rows.
  for await (const chunk of createReadStream(workFile, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length;) {
      if (lineStart) {
        if (entries % batchSize === 0) offsets.push(position + i);
        entries++;
      }
      const end = chunk.indexOf(0x0a, i);
      if (end === -1) {
        lineStart = false;
        break;
      }
      lineStart = true;
      i = end + 1;
    }
    position += chunk.length;
  }
  const buffer = Buffer.alloc(offsets.length * 8);
  offsets.forEach((offset, k) => buffer.writeDoubleLE(offset, k * 8));
  await writeFile(`${indexFile}.tmp`, buffer);
  await rename(`${indexFile}.tmp`, indexFile);
  return offsets.length;
}

export async function batchOffset(workFile: string, batchSize: number, batch: number): Promise<number> {
  const handle = await open(batchIndexPath(workFile, batchSize), 'r');
  try {
    const buffer = Buffer.alloc(8);
    const { bytesRead } = await handle.read(buffer, 0, 8, batch * 8);
    if (bytesRead !== 8) throw new RangeError(`batch ${batch} is beyond the end of ${workFile}`);
    return buffer.readDoubleLE(0);
  } finally {
    await handle.close();
  }
}
