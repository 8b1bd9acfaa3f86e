// The rows of any member source, one at a time (readSource) or in chunks (readSourceChunks, what preparing a work
// set reads). Which kind reads a source is decided in ./source-kinds.ts.
import type { SourceEntry } from '../domain/types';
import { readSourceChunks, type ResolvedSource } from './source-kinds';

export { readSourceChunks, type ResolvedSource };

/**
 * The rows of a member source, in source order, read lazily with bounded memory. Good rows yield
 * `{line, member}`, bad rows `{line, memberId?, skip}`; `line` is the 1-based physical line where the
 * record starts (a database row: its position in memberId order). Configuration problems throw
 * SourceConfigError at the first iteration, or where they are found. Duplicates are left to the caller.
 */
export async function* readSource(spec: ResolvedSource): AsyncIterable<SourceEntry> {
  for await (const chunk of readSourceChunks(spec)) yield* chunk;
}
