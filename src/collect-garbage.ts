/**
 * Asks V8 for a full collection, without waiting for it, when the worker runs with `--expose-gc` (`npm start` and
 * the image do). Called where a large structure off the JS heap was just dropped: the normaliser's duplicate index
 * holds about 12 MB at ten million rows in typed arrays (its table and the spilled runs' filters), whose memory goes
 * back only when a full collection finds them unreachable. In a ten-million run on a quiet machine the worker's RSS
 * fell by 23 MB only 3.5 minutes after the normaliser ended, the batches growing the heap meanwhile, so both counted
 * in the worker's peak (issue 26: the peak at ten million within 10% of a million's). Without the flag it does
 * nothing: the memory comes back at the next full collection, as before.
 */
export function collectGarbageSoon(): void {
  const gc = (globalThis as { gc?: (options: { type: 'major'; execution: 'async' }) => unknown }).gc;
  if (typeof gc === 'function') gc({ type: 'major', execution: 'async' });
}
