// The file kind of member source (workflow input {"type": "csv" | "jsonl", "path": ...}): a CSV or JSONL file on the
// worker that runs the preparation, framed, split and validated row by row with bounded memory.
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CsvError, parse as parseCsvText } from 'csv-parse/sync';
import { z } from 'zod';
import type { FileSourceSpec } from '../../workflows/definitions';
import { isUnder } from '../path-confinement';
import { MEMBER_COLUMNS, type MemberColumn, type SourceEntry } from '../domain/types';
import { sourceLabel } from '../domain/source-label';
import { SourceConfigError, UnreadableRestError } from './errors';
import type { MemberSource } from './member-source';
import { rowEntry } from './row-schema';

/**
 * A record (CSV row, JSONL line) larger than this is skipped unread: no customer row is that big, so
 * it is a broken export, and bounding it keeps memory flat even when a quote is never closed.
 */
export const MAX_RECORD_BYTES = 64 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * The rows of a CSV or JSONL file, in chunks (a 64 KiB read's records), in file order. `line` is the 1-based
 * physical line where the record starts. Configuration problems throw SourceConfigError, at the first iteration
 * (or, for a file ending inside a quoted field, when that end is reached).
 *
 * Design note: CSV records are framed here rather than by csv-parse's stream, because csv-parse's own
 * size guard (max_record_size with skip_records_with_error) drops the rest of the chunk after an
 * oversized record, losing good rows. Framing gives exact start lines and per-record size and UTF-8
 * checks; well-formed records are split here, malformed ones by csv-parse, which says what is wrong.
 */
export async function* readFileChunks(spec: FileSourceSpec): AsyncIterable<SourceEntry[]> {
  const handle = await openSourceFile(spec.path);
  try {
    const records = frameRecords(readChunks(handle), spec.type === 'csv', spec.path);
    yield* spec.type === 'csv' ? csvEntries(records, spec.path) : jsonlEntries(records, spec.path);
  } finally {
    await handle.close();
  }
}

export const fileSourceSchema = z
  .object({
    type: z.enum(['csv', 'jsonl'], {
      error:
        'must be "csv" or "jsonl" (a file, with "path"), "postgres" (with "table" or "query") or "mysql" (with "table")',
    }),
    path: z.string({ error: 'is required' }).min(1, 'must not be empty'),
  })
  .strict();

export const fileSource: MemberSource<FileSourceSpec, FileSourceSpec> = {
  types: ['csv', 'jsonl'],
  inputSchema: fileSourceSchema,
  resolve(spec, { sourceDirs }) {
    // Workflow input may only name files the operator gave the workers (BACKFILL_SOURCE_DIRS, when set).
    if (sourceDirs && !isUnder(spec.path, sourceDirs)) {
      return {
        problem: `source.path ${JSON.stringify(spec.path)} is not under the worker's BACKFILL_SOURCE_DIRS (${sourceDirs.join(', ')})`,
      };
    }
    return { ...spec, path: path.resolve(spec.path) };
  },
  read: readFileChunks,
  describe: sourceLabel,
};

// ---------------------------------------------------------------------------------------------------
// Opening and reading the file

async function openSourceFile(path: string): Promise<FileHandle> {
  // stat before open: opening a FIFO or device could block or never end.
  const stats = await stat(path).catch((error: unknown) => {
    throw new SourceConfigError(path, describeFsError(error));
  });
  if (stats.isDirectory()) throw new SourceConfigError(path, 'is a directory, not a file');
  if (!stats.isFile()) throw new SourceConfigError(path, 'is not a regular file');
  if (stats.size === 0) throw new SourceConfigError(path, 'is empty');
  return open(path, 'r').catch((error: unknown) => {
    throw new SourceConfigError(path, describeFsError(error));
  });
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'is not readable (permission denied)';
  if (code === 'ENOTDIR') return 'does not exist (a parent is not a directory)';
  return `cannot be opened (${code ?? 'unknown error'})`;
}

async function* readChunks(handle: FileHandle): AsyncGenerator<Buffer> {
  for (;;) {
    // A fresh buffer per read: a record spanning chunks keeps slices of earlier ones.
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK_BYTES, null);
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}

// ---------------------------------------------------------------------------------------------------
// Framing: bytes -> records with their start line, size-guarded, blank lines dropped

type FramedRecord = { line: number; bytes: Buffer } | { line: number; oversize: true };

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const SPACE = 0x20;
const TAB = 0x09;

// Where the CSV scanner is within a record; only QUOTED makes a line feed part of the record.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3; // a quote inside a quoted field: either "" (escaped) or the closing quote
type QuoteState = typeof FIELD_START | typeof UNQUOTED | typeof QUOTED | typeof QUOTE_IN_QUOTED;

/**
 * RFC 4180 quoting as csv-parse reads it. Malformed quoting (a quote inside an unquoted field, text
 * after a closing quote) falls back to UNQUOTED so the record ends at the line end; csv-parse then
 * rejects that record, and the rows after it are read normally.
 */
function nextQuoteState(state: QuoteState, byte: number): QuoteState {
  switch (state) {
    case FIELD_START:
      return byte === QUOTE ? QUOTED : byte === COMMA ? FIELD_START : UNQUOTED;
    case UNQUOTED:
      return byte === COMMA ? FIELD_START : UNQUOTED;
    case QUOTED:
      return byte === QUOTE ? QUOTE_IN_QUOTED : QUOTED;
    case QUOTE_IN_QUOTED:
      return byte === QUOTE ? QUOTED : byte === COMMA ? FIELD_START : UNQUOTED;
  }
}

/** Collects one record's bytes, dropping them once it outgrows MAX_RECORD_BYTES. */
class RecordBytes {
  private parts: Buffer[] = [];
  private size = 0;
  private oversize = false;

  append(segment: Buffer): void {
    if (this.oversize || segment.length === 0) return;
    this.size += segment.length;
    // One byte of slack for the CR of a CRLF ending, which is not part of the record.
    if (this.size > MAX_RECORD_BYTES + 1) {
      this.oversize = true;
      this.parts = [];
      return;
    }
    this.parts.push(segment);
  }

  /** The finished record (undefined for a blank line), and a reset for the next one. */
  take(line: number): FramedRecord | undefined {
    const { parts, size, oversize } = this;
    this.parts = [];
    this.size = 0;
    this.oversize = false;
    if (oversize) return { line, oversize: true };
    // One part (a record within one read) is used as it is: copying every record cost the garbage collector more
    // than anything else in reading a large CSV. The chunk behind it is a fresh buffer per read (see readChunks).
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    if (bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > MAX_RECORD_BYTES) return { line, oversize: true };
    return isBlank(bytes) ? undefined : { line, bytes };
  }
}

function isBlank(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === SPACE || byte === TAB);
}

function startsWithBom(chunk: Buffer): boolean {
  return chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf;
}

/**
 * Splits the byte stream into records: at every LF for JSONL (JSON strings cannot hold a raw LF), at
 * every LF outside a quoted field for CSV. A CRLF's CR is dropped; a UTF-8 BOM at the start is skipped.
 */
async function* frameRecords(
  chunks: AsyncIterable<Buffer>,
  csvQuoting: boolean,
  file: string,
): AsyncGenerator<FramedRecord[]> {
  const record = new RecordBytes();
  let line = 1; // physical line of the byte being scanned
  let recordLine = 1; // physical line where the current record started
  let quote: QuoteState = FIELD_START;
  let atFileStart = true;

  for await (const chunk of chunks) {
    let segmentStart = atFileStart && startsWithBom(chunk) ? 3 : 0;
    atFileStart = false;
    const records: FramedRecord[] = []; // the records this chunk finishes, handed on together
    let nextQuote = -1; // where the chunk's next quote is, from `i` on (searched again once `i` passes it)
    for (let i = segmentStart; i < chunk.length; i++) {
      if (quote === FIELD_START || quote === UNQUOTED) {
        // Fast path: outside a quoted field, a stretch up to the next line feed that holds no quote cannot change
        // where the record ends (commas only move between FIELD_START and UNQUOTED), so it is skipped with native
        // searches instead of a JS step per byte: framing was a third of reading a million-row CSV.
        const lf = chunk.indexOf(LF, i);
        const stretchEnd = lf < 0 ? chunk.length : lf;
        if (csvQuoting && nextQuote < i) nextQuote = chunk.indexOf(QUOTE, i) >>> 0; // none: 2^32 - 1, past any chunk
        if (!csvQuoting || nextQuote >= stretchEnd) {
          if (csvQuoting && stretchEnd > i) quote = chunk[stretchEnd - 1] === COMMA ? FIELD_START : UNQUOTED;
          if (lf < 0) break;
          i = lf;
        } else if (nextQuote > i) {
          // A quote ahead on this line: the stretch before it holds no quote and no line feed either.
          quote = chunk[nextQuote - 1] === COMMA ? FIELD_START : UNQUOTED;
          i = nextQuote;
        }
      }
      const byte = chunk[i] as number;
      if (byte === LF) {
        line++;
        if (quote === QUOTED) continue; // a line break inside a quoted field
        record.append(chunk.subarray(segmentStart, i));
        const finished = record.take(recordLine);
        segmentStart = i + 1;
        recordLine = line;
        quote = FIELD_START;
        if (finished) records.push(finished);
      } else if (csvQuoting) {
        quote = nextQuoteState(quote, byte);
      }
    }
    record.append(chunk.subarray(segmentStart));
    if (records.length) yield records;
  }

  if (quote === QUOTED) {
    // The rest of the file was swallowed by one field: rows are missing, so this is not one bad row.
    throw new UnreadableRestError(
      file,
      `the quoted field in the record starting on line ${recordLine} is never closed (truncated or corrupt file)`,
      recordLine,
      'quoted field never closed: the rest of the file is one bad record (truncated or corrupt file)',
    );
  }
  const last = record.take(recordLine);
  if (last) yield [last];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The record as text, or undefined when it is not valid UTF-8. */
function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const OVERSIZE_REASON = `record larger than ${MAX_RECORD_BYTES / 1024} KiB`;

// ---------------------------------------------------------------------------------------------------
// CSV

const CSV_RECORD_OPTIONS = {
  bom: false,
  relax_column_count: true,
  skip_empty_lines: false,
  record_delimiter: ['\r\n', '\n'],
};

// csv-parse's messages quote the field content (personal data), so only its error code is kept.
const CSV_PROBLEMS: Partial<Record<string, string>> = {
  INVALID_OPENING_QUOTE: 'quote inside an unquoted field',
  CSV_INVALID_CLOSING_QUOTE: 'text after a closing quote',
  CSV_QUOTE_NOT_CLOSED: 'unclosed quote',
};

/** The cells of one framed CSV record, or the reason it cannot be split. */
export function splitCsvRecord(text: string): string[] | { problem: string } {
  // Nearly every exported row has no quote at all, and then RFC 4180 leaves nothing to interpret: its cells
  // are the text between commas (framing already ended the record at its line feed). Building a csv-parse
  // parser per record cost more than half of prepare's CPU; quoted records still go through it.
  if (!text.includes('"')) return text.split(',');
  // About a quarter of real exports quote some cell (a name with a comma). Well-formed RFC 4180 quoting is read
  // here too; anything irregular goes to csv-parse, which says what is wrong with it.
  const quoted = splitWellQuoted(text);
  if (quoted) return quoted;
  try {
    const rows = parseCsvText(text, CSV_RECORD_OPTIONS);
    const [cells] = rows;
    return rows.length === 1 && cells ? cells : { problem: 'not a single record' };
  } catch (error) {
    if (error instanceof CsvError) return { problem: CSV_PROBLEMS[error.code] ?? error.code };
    throw error;
  }
}

/**
 * The cells of a record whose every quoted cell is well formed (opens the cell, closes right before a comma or
 * the end, `""` inside for a quote), as csv-parse would read it; undefined for anything else (a quote inside an
 * unquoted cell, text after a closing quote, an unclosed quote), which is csv-parse's to diagnose.
 */
function splitWellQuoted(text: string): string[] | undefined {
  const cells: string[] = [];
  const end = text.length;
  let i = 0;
  for (;;) {
    let next: number; // where the cell's delimiter (a comma, or the end) is
    if (text.charCodeAt(i) === QUOTE) {
      let value = '';
      let from = i + 1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q < 0) return undefined;
        value += text.slice(from, q);
        if (text.charCodeAt(q + 1) !== QUOTE) {
          next = q + 1;
          break;
        }
        value += '"';
        from = q + 2;
      }
      if (next !== end && text.charCodeAt(next) !== COMMA) return undefined;
      cells.push(value);
    } else {
      const comma = text.indexOf(',', i);
      next = comma < 0 ? end : comma;
      const cell = text.slice(i, next);
      if (cell.includes('"')) return undefined;
      cells.push(cell);
    }
    if (next === end) return cells;
    i = next + 1;
  }
}

type CsvLayout = { width: number; index: Record<MemberColumn, number> };

function readHeader(record: FramedRecord, file: string): CsvLayout {
  if ('oversize' in record)
    throw new SourceConfigError(file, `CSV header is larger than ${MAX_RECORD_BYTES / 1024} KiB`);
  const text = decodeUtf8(record.bytes);
  if (text === undefined) throw new SourceConfigError(file, 'CSV header is not valid UTF-8');
  const cells = splitCsvRecord(text);
  if (!Array.isArray(cells)) throw new SourceConfigError(file, `CSV header is not valid CSV (${cells.problem})`);
  const names = cells.map((name) => name.trim());

  const missing = MEMBER_COLUMNS.filter((column) => !names.includes(column));
  if (missing.length > 0) {
    throw new SourceConfigError(
      file,
      `CSV header lacks required column(s) ${missing.join(', ')} (it must name ${MEMBER_COLUMNS.join(', ')})`,
    );
  }
  const repeated = MEMBER_COLUMNS.filter((column) => names.indexOf(column) !== names.lastIndexOf(column));
  if (repeated.length > 0)
    throw new SourceConfigError(file, `CSV header names column(s) ${repeated.join(', ')} more than once`);

  const index = Object.fromEntries(MEMBER_COLUMNS.map((column) => [column, names.indexOf(column)])) as Record<
    MemberColumn,
    number
  >;
  return { width: names.length, index };
}

function csvRowEntry(record: FramedRecord, layout: CsvLayout): SourceEntry {
  const { line } = record;
  if ('oversize' in record) return { line, skip: OVERSIZE_REASON };
  const text = decodeUtf8(record.bytes);
  if (text === undefined) return { line, skip: 'invalid UTF-8' };
  const cells = splitCsvRecord(text);
  if (!Array.isArray(cells)) return { line, skip: `malformed CSV: ${cells.problem}` };
  // A short or long row has shifted columns: comparing them would replay wrong values.
  if (cells.length !== layout.width)
    return { line, skip: `has ${cells.length} fields, the header has ${layout.width}` };
  const raw: Record<string, string | undefined> = {};
  for (const column of MEMBER_COLUMNS) raw[column] = cells[layout.index[column]];
  return rowEntry(line, raw);
}

/**
 * A header with no data rows is a configuration error, not a valid empty source: an export that
 * produced no rows is far more likely a failed export than a customer with no members.
 */
async function* csvEntries(chunks: AsyncIterable<FramedRecord[]>, file: string): AsyncGenerator<SourceEntry[]> {
  let layout: CsvLayout | undefined;
  let rows = 0;
  for await (const records of chunks) {
    const entries: SourceEntry[] = [];
    for (const record of records) {
      if (!layout) {
        layout = readHeader(record, file);
        continue;
      }
      rows++;
      entries.push(csvRowEntry(record, layout));
    }
    if (entries.length) yield entries;
  }
  if (!layout) throw new SourceConfigError(file, 'holds only blank lines (no CSV header)');
  if (rows === 0) throw new SourceConfigError(file, 'has a CSV header but no data rows');
}

// ---------------------------------------------------------------------------------------------------
// JSONL

function jsonlLineEntry(record: FramedRecord): SourceEntry {
  const { line } = record;
  if ('oversize' in record) return { line, skip: OVERSIZE_REASON };
  const text = decodeUtf8(record.bytes);
  if (text === undefined) return { line, skip: 'invalid UTF-8' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line, skip: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { line, skip: 'not a JSON object' };
  return rowEntry(line, value as Record<string, unknown>);
}

async function* jsonlEntries(chunks: AsyncIterable<FramedRecord[]>, file: string): AsyncGenerator<SourceEntry[]> {
  let rows = 0;
  for await (const records of chunks) {
    rows += records.length;
    yield records.map(jsonlLineEntry);
  }
  if (rows === 0) throw new SourceConfigError(file, 'holds only blank lines (no rows)');
}
