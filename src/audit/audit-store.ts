import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, open, mkdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { LineSet, MAX_LINE } from '../report/line-set';
import { loggedEntry, OUTCOME_NAMES, type AuditRecord, type LoggedEntry } from './audit-entry';
import { decodeOutcome, encodeOutcome, type RecordedOutcome } from '../domain/outcome-code';
import { OutcomeCodes } from './outcome-codes';
export type { RecordedOutcome } from '../domain/outcome-code';
import { auditHeaderLine, parseAuditHeaderLine, type AuditHeader } from './audit-header';
import { keepWait, parseRunWaitLine, runWaitLine, type RunWait } from './run-wait';

/**
 * The audit log of one backfill, as seen by activities. Appends are idempotent per source line: an
 * entry for a line that is already recorded is dropped, so a batch that runs again after a crash
 * never records a member twice. "Recorded" is the durable truth the workflow's counters are built on.
 */
export interface AuditStore {
  lookup(auditPath: string, lines: readonly number[]): Promise<Map<number, RecordedOutcome>>;
  /** Records as their log stores them (loggedEntry: a verdict under its outcome). */
  append(auditPath: string, entries: readonly AuditRecord[]): Promise<void>;
  /**
   * The log's records, streamed (never the whole log in memory): the file in file order, a table in
   * source-line order. The first record of a line wins; later records of it, and lines that are not an
   * audit record (torn by a crash), are skipped and counted in `stats`. A log that does not exist is an
   * AuditLogNotFoundError naming it; any other failure to read it an AuditLogError.
   */
  entries(auditPath: string, stats?: AuditReadStats): AsyncIterable<LoggedEntry>;
  /**
   * Writes the log's header unless it has one (the first header wins: a retried preparation, a later run
   * reusing the log keep it). A log that already holds records without a header (written before headers
   * existed) gets none. Returns the header the log has after the call, or undefined for such a log.
   */
  writeHeader(auditPath: string, header: AuditHeader): Promise<AuditHeader | undefined>;
  /** The log's header, or undefined when it has none or does not exist. */
  header(auditPath: string): Promise<AuditHeader | undefined>;
  /**
   * Records a time the run waited for the receiver or a store (src/audit/run-wait.ts) beside the outcomes; entries()
   * hands the log's waits over in `stats.waits`. Recording one twice is harmless (readers keep one per waitKey).
   */
  recordWait(auditPath: string, wait: RunWait): Promise<void>;
}

export interface AuditReadStats {
  /** Distinct source lines read. */
  entries: number;
  /** Records of an already seen line, dropped. */
  repeated: number;
  /** Lines that are not an audit record (torn by a crash, or not JSON), skipped. */
  unreadable: number;
  /** The log's header, set by entries() when it has one (it is neither an entry nor unreadable). */
  header?: AuditHeader;
  /**
   * The times the run waited for the receiver or a store (src/audit/run-wait.ts), one per waitKey, set by entries()
   * once it has read the log to the end when it has any (they are neither entries nor unreadable).
   */
  waits?: RunWait[];
}

export const newReadStats = (): AuditReadStats => ({ entries: 0, repeated: 0, unreadable: 0 });

/** The audit log could not be read. The message is one line and names the log, never its content. */
export class AuditLogError extends Error {
  override name = 'AuditLogError';

  constructor(
    readonly auditPath: string,
    readonly detail: string,
  ) {
    super(`cannot read the audit log ${auditPath}: ${detail}`);
  }
}

/** There is no such audit log (no file, a directory, no record under the key). */
export class AuditLogNotFoundError extends AuditLogError {
  override name = 'AuditLogNotFoundError';
}

/** An audit record (a non-array object with an integer line in 1..MAX_LINE and a known outcome), or undefined. */
export function asAuditRecord(value: unknown): LoggedEntry | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entry = value as Partial<LoggedEntry>;
  if (typeof entry.line !== 'number' || !Number.isInteger(entry.line) || entry.line < 1 || entry.line > MAX_LINE)
    return undefined;
  if (typeof entry.outcome !== 'string' || !OUTCOME_NAMES.has(entry.outcome)) return undefined;
  return entry as LoggedEntry;
}

/** One line of a JSONL audit log as a record, or undefined for a line that is not one. */
export function parseAuditRecord(text: string): LoggedEntry | undefined {
  try {
    return asAuditRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * Streams the distinct records of a JSONL audit log in file order, read line by line as the workers
 * read it: the first record of a source line wins, a torn or foreign line is skipped and counted.
 * A pipe works too (`report --audit <(zcat audit.jsonl.gz)`).
 */
export async function* readAuditLogFile(
  file: string,
  stats: AuditReadStats = newReadStats(),
): AsyncGenerator<LoggedEntry> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new AuditLogNotFoundError(file, 'no such file');
    throw new AuditLogError(file, err.code ?? err.message);
  });
  if (info.isDirectory()) throw new AuditLogNotFoundError(file, 'it is a directory');
  const seen = new LineSet();
  const waits: RunWait[] = [];
  const waitKeys = new Set<string>();
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let first = true;
  try {
    for await (const text of lines) {
      // Only the first line can be the header (it is written before any record, or not at all).
      const header = first ? parseAuditHeaderLine(text) : undefined;
      first = false;
      if (header) {
        stats.header = header;
        continue;
      }
      if (text.trim() === '') continue;
      const entry = parseAuditRecord(text);
      const wait = entry ? undefined : parseRunWaitLine(text);
      if (wait) {
        keepWait(waits, waitKeys, wait);
        continue;
      }
      if (!entry) {
        stats.unreadable += 1;
        continue;
      }
      if (!seen.add(entry.line)) {
        stats.repeated += 1;
        continue;
      }
      stats.entries += 1;
      yield entry;
    }
    if (waits.length > 0) stats.waits = waits;
  } catch (err) {
    if (err instanceof AuditLogError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new AuditLogError(file, code ?? (err as Error).message);
  } finally {
    lines.close();
    input.destroy();
  }
}

/**
 * JSONL audit log with a compact per-process index (one byte per source line), refreshed from the
 * file's tail before every read so that several worker processes appending to one file stay in step.
 */
export function createFileAuditStore(): AuditStore {
  const indexes = new Map<string, FileIndex>();
  const indexFor = (auditPath: string) => {
    const key = path.resolve(auditPath);
    let index = indexes.get(key);
    if (!index) {
      index = new FileIndex(key);
      indexes.set(key, index);
    }
    return index;
  };
  return {
    lookup: (auditPath, lines) => indexFor(auditPath).lookup(lines),
    append: (auditPath, entries) => indexFor(auditPath).append(entries),
    entries: (auditPath, stats) => readAuditLogFile(auditPath, stats),
    writeHeader: (auditPath, header) => writeFileHeader(path.resolve(auditPath), header),
    header: (auditPath) => readFileHeader(path.resolve(auditPath)),
    recordWait: (auditPath, wait) => indexFor(auditPath).appendLine(runWaitLine(wait)),
  };
}

/**
 * The header goes in as the file's first line or not at all: written whole to a temporary file beside the log,
 * then linked to the log's name, which fails if the log exists (another attempt or run got there first, or
 * records were appended). So no reader ever sees a log with half a header, and two writers cannot both win.
 */
async function writeFileHeader(file: string, header: AuditHeader): Promise<AuditHeader | undefined> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.header-${process.pid}-${randomUUID()}`;
  await writeHeaderLine(await open(temp, 'wx', 0o600), header);
  try {
    await link(temp, file);
    return header;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return await readFileHeader(file);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
    // A file system without hard links: create the log exclusively and write the header into it.
    return await writeExclusive(file, header);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function writeExclusive(file: string, header: AuditHeader): Promise<AuditHeader | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileHeader(file);
    throw err;
  }
  await writeHeaderLine(handle, header);
  return header;
}

/** Writes the header's line to a new file, synced, and closes it. */
async function writeHeaderLine(handle: FileHandle, header: AuditHeader): Promise<void> {
  try {
    await handle.writeFile(`${auditHeaderLine(header)}\n`, 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Longest first line read looking for a header: a header is far shorter; a longer line is no header. */
const MAX_HEADER_BYTES = 64 * 1024;

async function readFileHeader(file: string): Promise<AuditHeader | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new AuditLogError(file, code ?? (err as Error).message);
  }
  try {
    const buffer = Buffer.alloc(MAX_HEADER_BYTES);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (buffer.subarray(0, filled).includes(0x0a)) break;
    }
    const text = buffer.subarray(0, filled).toString('utf8');
    const end = text.indexOf('\n');
    if (end < 0) return undefined; // empty, or a first line still being written: no header
    return parseAuditHeaderLine(text.slice(0, end).replace(/\r$/, ''));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') return undefined;
    throw new AuditLogError(file, code ?? (err as Error).message);
  } finally {
    await handle.close();
  }
}

class FileIndex {
  private readonly codes = new OutcomeCodes();
  private readBytes = 0;
  private partial = '';
  // Reads come in chunks: a character whose bytes a chunk splits must not turn into two replacement characters.
  private decoder = new StringDecoder('utf8');
  private queue: AuditRecord[] = [];
  /** The entries in `queue`, to queue each once however often a failing append is retried. */
  private readonly queued = new Set<AuditRecord>();
  // All reads and writes of one file go through this chain so the index and the file never disagree.
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string) {}

  lookup(lines: readonly number[]): Promise<Map<number, RecordedOutcome>> {
    return this.serialize(async () => {
      await this.refresh();
      const found = new Map<number, RecordedOutcome>();
      for (const line of lines) {
        const recorded = decodeOutcome(this.codes.get(line));
        if (recorded) found.set(line, recorded);
      }
      return found;
    });
  }

  append(entries: readonly AuditRecord[]): Promise<void> {
    // Callers queue; whichever write runs next takes everything queued, so concurrent members
    // share one write and one sync instead of paying for one each.
    this.enqueue(entries);
    return this.serialize(async () => {
      if (this.queue.length === 0) return;
      const queued = this.queue.splice(0);
      this.queued.clear();
      try {
        await this.appendNow(queued);
      } catch (err) {
        // Only this call's caller hears of the failure, yet the write carried other callers' entries too: back in
        // the queue, ahead of anything newer, so their own turn writes them (or fails and tells them) instead of
        // finding the queue empty and resolving as if they were recorded (issue 28: a full disk lost records).
        const newer = this.queue.splice(0);
        this.queued.clear();
        this.enqueue(queued);
        this.enqueue(newer);
        throw err;
      }
    });
  }

  /** Queues entries not queued already: a caller retrying a failed append passes the same ones again. */
  private enqueue(entries: readonly AuditRecord[]): void {
    for (const entry of entries) {
      if (this.queued.has(entry)) continue;
      this.queued.add(entry);
      this.queue.push(entry);
    }
  }

  /** Writes the entries whose line is not recorded yet (the first of each line), and indexes them. */
  private async appendNow(queued: readonly AuditRecord[]): Promise<void> {
    await this.refresh();
    const fresh: LoggedEntry[] = [];
    const seen = new Set<number>();
    for (const entry of queued) {
      if (this.codes.get(entry.line) !== 0 || seen.has(entry.line)) continue;
      seen.add(entry.line);
      fresh.push(loggedEntry(entry));
    }
    if (fresh.length === 0) return;
    const { prefix, whole } = await this.write(fresh.map((e) => JSON.stringify(e)));
    // If nobody else appended meanwhile, the file is exactly what we had plus what we wrote: index it
    // now instead of reading it back. Otherwise the next refresh reads it like another process's.
    if (whole !== undefined) {
      // What ingest(text) would find, without parsing back what was just serialised: the torn line our
      // line feed completed (indexed if it happens to be a whole entry), then the entries written.
      if (prefix) this.ingest(prefix);
      for (const entry of fresh) this.index(entry);
      this.readBytes = whole;
      this.decoder = new StringDecoder('utf8'); // what it held belonged to the torn line our line feed ended
    }
  }

  /** Appends one line that is not a record (a wait): the index skips it when it next reads the file. */
  appendLine(text: string): Promise<void> {
    return this.serialize(async () => {
      await this.refresh();
      await this.write([text]);
    });
  }

  /**
   * Appends `lines` in one write and one sync, after a line feed if the file ends in a torn line (a crash mid-write
   * elsewhere must not swallow our first line). `whole`: the file's new size when nobody else appended meanwhile.
   */
  private async write(lines: readonly string[]): Promise<{ prefix: string; whole: number | undefined }> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const prefix = this.partial.length > 0 ? '\n' : '';
    const text = prefix + lines.join('\n') + '\n';
    const before = this.readBytes;
    const handle = await open(this.file, 'a', 0o600);
    let after: number;
    try {
      await handle.appendFile(text, 'utf8');
      await handle.datasync();
      after = (await handle.stat()).size;
    } finally {
      await handle.close();
    }
    return { prefix, whole: after === before + Buffer.byteLength(text, 'utf8') ? after : undefined };
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const next = this.chain.then(task, task);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Reads whatever was appended since the last look, by this or any other process. */
  private async refresh(): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (size <= this.readBytes) return;
    const handle = await open(this.file, 'r');
    try {
      const chunk = Buffer.alloc(Math.min(size - this.readBytes, 4 * 1024 * 1024));
      while (this.readBytes < size) {
        const { bytesRead } = await handle.read(
          chunk,
          0,
          Math.min(chunk.length, size - this.readBytes),
          this.readBytes,
        );
        if (bytesRead === 0) break;
        this.readBytes += bytesRead;
        this.ingest(this.decoder.write(chunk.subarray(0, bytesRead)));
      }
    } finally {
      await handle.close();
    }
  }

  private ingest(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      if (raw.trim() === '') continue;
      let entry: Partial<LoggedEntry>;
      try {
        entry = JSON.parse(raw) as Partial<LoggedEntry>;
      } catch {
        continue; // a torn line from a crash mid-write: its member was not recorded and will be redone
      }
      this.index(entry);
    }
  }

  private index(entry: Partial<LoggedEntry>): void {
    const { line, outcome } = entry;
    // Lines and outcomes as written: anything else in the file is not a record (a hand-edited or foreign line).
    if (line === undefined || !Number.isSafeInteger(line) || line < 0) return;
    if (typeof outcome !== 'string' || !OUTCOME_NAMES.has(outcome)) return;
    if (this.codes.get(line) !== 0) return; // first record wins, as for readers of the file
    this.codes.set(line, encodeOutcome(entry as LoggedEntry));
  }
}
