import { readdir, readFile, rm, stat, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError } from '../../src/source/errors';
import type { ResolvedSource as ResolvedSource } from '../../src/source/read-source';
import {
  prepareWorkFile,
  readWorkBatch,
  workFileSummaryPath,
  workLine,
  type PrepareSummary,
} from '../../src/source/work-file';
import type { SourceEntry, StoredMember, WorkEntry } from '../../src/domain/types';
import { createStoresFor, type StoreKind } from '../support/stores';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { cleanupBackfill } from '../../activities/cleanup';
import { main } from '../../src/cli/main';

let dir: string;
let caseCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'work-file-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';

function member(memberId: string, values: Partial<StoredMember> = {}): StoredMember {
  return { memberId, mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: null, ...values };
}

/** A fresh source file and a work file path in a not-yet-existing subdirectory. */
async function setUp(content: string, type: 'csv' | 'jsonl' = 'csv') {
  const caseDir = path.join(dir, `case-${caseCount++}`);
  const source = path.join(dir, `source-${caseCount}.${type}`);
  await writeFile(source, content);
  return {
    spec: { type, path: source } satisfies ResolvedSource,
    workFile: path.join(caseDir, 'nested', 'members.jsonl'),
  };
}

async function readAllBatches(
  workFile: string,
  batchSize: number,
): Promise<{ entries: SourceEntry[]; batches: number }> {
  const entries: SourceEntry[] = [];
  let offset = 0;
  let batches = 0;
  for (;;) {
    const batch = await readWorkBatch(workFile, offset, batchSize);
    batches++;
    expect(batch.entries.length).toBeLessThanOrEqual(batchSize);
    expect(batch.nextOffset).toBeGreaterThanOrEqual(offset);
    entries.push(...batch.entries);
    offset = batch.nextOffset;
    if (batch.done) return { entries, batches };
    expect(batch.entries).toHaveLength(batchSize); // only the last batch may be short
  }
}

const SOURCE = [
  HEADER,
  'm1,010-1234-5678,a@example.com,true,false',
  'm2,,,,',
  'm1,,other@example.com,,', // duplicate of line 2
  ',,,,', // empty memberId
  'm3,,,maybe,', // bad row with a memberId
  'm3,,,,', // duplicate of a bad row
  '"m 4/@?#",,"multi',
  'line",yes,no',
  'm5,,,,',
  'm2,,,,', // second duplicate of line 3
  'm6,,,,',
].join('\n');

const EXPECTED: SourceEntry[] = [
  {
    line: 2,
    member: member('m1', {
      mobileNumber: '010-1234-5678',
      email: 'a@example.com',
      unsubscribeEmail: true,
      unsubscribeTexting: false,
    }),
  },
  { line: 3, member: member('m2') },
  { line: 4, memberId: 'm1', skip: 'duplicate memberId (first seen on line 2)' },
  { line: 5, skip: 'empty memberId' },
  { line: 6, memberId: 'm3', skip: 'unsubscribeEmail: invalid boolean' },
  { line: 7, memberId: 'm3', skip: 'duplicate memberId (first seen on line 6)' },
  { line: 8, member: member('m 4/@?#', { email: 'multi\nline', unsubscribeEmail: true, unsubscribeTexting: false }) },
  { line: 10, member: member('m5') },
  { line: 11, memberId: 'm2', skip: 'duplicate memberId (first seen on line 3)' },
  { line: 12, member: member('m6') },
];

describe('workLine', () => {
  const members: StoredMember[] = [
    member('m1'),
    member('m "2" \\ 회원', { mobileNumber: '010-1234-5678', email: 'a\nb@example.com' }),
    member('m3', { unsubscribeEmail: true, unsubscribeTexting: false }),
    member('m4', { unsubscribeEmail: false, unsubscribeTexting: true, email: '\u2028' }),
  ];
  it.each(members)('writes a plain member entry exactly as JSON.stringify does: %j', (m) => {
    const entry: SourceEntry = { line: 7, member: m };
    expect(workLine(entry)).toBe(`${JSON.stringify(entry)}\n`);
  });

  it.each<WorkEntry>([
    { line: 3, memberId: 'm1', skip: 'duplicate memberId (first seen on line 2)' },
    { line: 4, skip: 'invalid UTF-8' },
    { line: 5, member: member('m5'), planned: { action: 'upsert', fields: ['email'] } },
    { line: 6, member: member('m6'), repair: { event: 'delete', deliveredAt: 1 }, exportLine: 9 },
    { line: 8, member: member('m8'), repair: { event: 'upsert', deliveredAt: 2 }, absent: true },
    { line: 9, member: member('m9'), planned: undefined }, // an unset key is no key, for both
    { line: 10, member: member('m10'), addedLater: 1 } as unknown as SourceEntry, // a key SourceEntry may gain
  ])('writes any other entry with JSON.stringify: %j', (entry) => {
    expect(workLine(entry)).toBe(`${JSON.stringify(entry)}\n`);
  });
});

describe('prepareWorkFile', () => {
  it('writes one JSON line per source row, skipping later duplicates, and summarises', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    const summary = await prepareWorkFile(spec, workFile);
    const text = await readFile(workFile, 'utf8');

    expect(
      text
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line)),
    ).toEqual(EXPECTED);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')[0]).toBe(
      '{"line":2,"member":{"memberId":"m1","mobileNumber":"010-1234-5678","email":"a@example.com","unsubscribeEmail":true,"unsubscribeTexting":false}}',
    );
    expect(text.split('\n')[2]).toBe('{"line":4,"memberId":"m1","skip":"duplicate memberId (first seen on line 2)"}');
    expect(summary).toEqual({ rows: 10, members: 5, skipped: 5, bytes: Buffer.byteLength(text) });
    expect(JSON.parse(await readFile(workFileSummaryPath(workFile), 'utf8'))).toEqual(summary);
    expect((await readdir(path.dirname(workFile))).sort()).toEqual(['members.jsonl', 'members.jsonl.summary.json']);
  });

  it('creates the work file and its summary with mode 0600', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    await prepareWorkFile(spec, workFile);
    expect((await stat(workFile)).mode & 0o777).toBe(0o600);
    expect((await stat(workFileSummaryPath(workFile))).mode & 0o777).toBe(0o600);
  });

  it('returns the stored summary on a second call without re-reading the source or rewriting the file', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    const first = await prepareWorkFile(spec, workFile);
    const before = await stat(workFile);
    await writeFile(spec.path, `${HEADER}\nchanged,,,,\n`);
    const second = await prepareWorkFile(spec, workFile);
    await rm(spec.path);
    const third = await prepareWorkFile(spec, workFile);
    const after = await stat(workFile);

    expect(second).toEqual(first);
    expect(third).toEqual(first);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('prepares again when the summary is missing or does not match the work file', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    const first = await prepareWorkFile(spec, workFile);
    await rm(workFileSummaryPath(workFile));
    expect(await prepareWorkFile(spec, workFile)).toEqual(first);
    await writeFile(workFile, 'garbage\n');
    expect(await prepareWorkFile(spec, workFile)).toEqual(first);
    expect((await readAllBatches(workFile, 4)).entries).toEqual(EXPECTED);
  });

  it('on a configuration error leaves no work file, temp file or summary behind', async () => {
    const { spec, workFile } = await setUp('memberId,email\nm1,x\n');
    await expect(prepareWorkFile(spec, workFile)).rejects.toBeInstanceOf(SourceConfigError);
    expect(await readdir(path.dirname(workFile))).toEqual([]);
  });
});

describe('readWorkBatch', () => {
  it.each([1, 3, 4, 10, 11, 1000])(
    'reading in batches of %i until done reproduces every entry in order',
    async (batchSize) => {
      const { spec, workFile } = await setUp(SOURCE);
      await prepareWorkFile(spec, workFile);
      const { entries, batches } = await readAllBatches(workFile, batchSize);
      expect(entries).toEqual(EXPECTED);
      expect(batches).toBe(Math.max(1, Math.ceil(EXPECTED.length / batchSize)));
    },
  );

  it('reads a work file larger than its read chunk in batches of 3', async () => {
    const rows = Array.from(
      { length: 3_000 },
      (_, i) => `회원-${i},+8210${String(i).padStart(8, '0')},user${i}@example.com,${i % 2 ? 'yes' : 'no'},`,
    );
    const { spec, workFile } = await setUp(`${HEADER}\n${rows.join('\n')}\n`);
    const summary: PrepareSummary = await prepareWorkFile(spec, workFile);
    expect(summary.bytes).toBeGreaterThan(3 * 64 * 1024);
    const { entries } = await readAllBatches(workFile, 3);
    expect(entries).toHaveLength(3_000);
    entries.forEach((entry, i) =>
      expect(entry).toMatchObject({ line: i + 2, member: { memberId: `회원-${i}`, unsubscribeEmail: i % 2 === 1 } }),
    );
  });

  it('reads a line longer than the read chunk', async () => {
    // A raw control character is one byte in CSV and six in JSON (\u0001): a 60 KB row, a 360 KB line.
    const email = '\u0001'.repeat(60_000);
    const { spec, workFile } = await setUp(`${HEADER}\nm1,,${email},,\nm2,,,,\n`);
    await prepareWorkFile(spec, workFile);
    const first = await readWorkBatch(workFile, 0, 1);
    expect(first.entries).toEqual([{ line: 2, member: member('m1', { email }) }]);
    expect(first.nextOffset).toBeGreaterThan(360_000);
    expect(first.done).toBe(false);
    expect(await readWorkBatch(workFile, first.nextOffset, 5)).toEqual({
      entries: [{ line: 3, member: member('m2') }],
      nextOffset: (await stat(workFile)).size,
      done: true,
    });
  });

  it('returns the same batch for the same arguments', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    await prepareWorkFile(spec, workFile);
    const first = await readWorkBatch(workFile, 0, 3);
    const middle = await readWorkBatch(workFile, first.nextOffset, 3);
    expect(await readWorkBatch(workFile, first.nextOffset, 3)).toEqual(middle);
    expect(await readWorkBatch(workFile, 0, 3)).toEqual(first);
    expect(middle.entries).toEqual(EXPECTED.slice(3, 6));
  });

  it('at the end of the file returns no entries and done', async () => {
    const { spec, workFile } = await setUp(SOURCE);
    const { bytes } = await prepareWorkFile(spec, workFile);
    expect(await readWorkBatch(workFile, bytes, 3)).toEqual({ entries: [], nextOffset: bytes, done: true });
  });

  const badArguments: { name: string; offset: (bytes: number) => number; max: number; error: RegExp }[] = [
    { name: 'offset beyond the end', offset: (bytes) => bytes + 1, max: 3, error: /beyond the end/ },
    { name: 'offset inside a line', offset: () => 5, max: 3, error: /not at the start of a line/ },
    { name: 'negative offset', offset: () => -1, max: 3, error: /non-negative integer/ },
    { name: 'fractional offset', offset: () => 1.5, max: 3, error: /non-negative integer/ },
    { name: 'zero maxEntries', offset: () => 0, max: 0, error: /positive integer/ },
  ];
  it.each(badArguments)('rejects $name', async ({ offset, max, error }) => {
    const { spec, workFile } = await setUp(SOURCE);
    const { bytes } = await prepareWorkFile(spec, workFile);
    await expect(readWorkBatch(workFile, offset(bytes), max)).rejects.toThrow(error);
  });

  it('rejects a truncated or corrupt work file without quoting its content', async () => {
    const workFile = path.join(dir, `corrupt-${caseCount++}.jsonl`);
    await writeFile(
      workFile,
      '{"line":2,"member":{"memberId":"m1","mobileNumber":null,"email":null,"unsubscribeEmail":null,"unsubscribeTexting":null}}\n{"line":3,"memb',
    );
    await expect(readWorkBatch(workFile, 0, 5)).rejects.toThrow(/truncated/);
    expect((await readWorkBatch(workFile, 0, 1)).entries).toHaveLength(1);

    await writeFile(workFile, '{"line":2,"email":"secret@example.com"}\n');
    const error = await readWorkBatch(workFile, 0, 5).then(
      () => new Error('expected a rejection'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toMatch(/corrupt: the line at byte 0/);
    expect(error.message).not.toContain('secret');
  });

  const GOOD =
    '{"line":2,"member":{"memberId":"m1","mobileNumber":"010","email":null,"unsubscribeEmail":true,"unsubscribeTexting":null}}';
  const memberLine = (member: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      line: 3,
      member: {
        memberId: 'm2',
        mobileNumber: null,
        email: 'e@example.com',
        unsubscribeEmail: null,
        unsubscribeTexting: false,
        ...member,
      },
      ...extra,
    });
  const REPAIR = { event: 'delete', reason: 'not-found', deliveredAt: 1700000000000 };
  const badLines: Array<{ name: string; text: string }> = [
    { name: 'not JSON', text: '{"line":3,' + '"member"}' },
    { name: 'an array', text: '[3]' },
    { name: 'null', text: 'null' },
    { name: 'line 0', text: memberLine({}).replace('"line":3', '"line":0') },
    { name: 'a fractional line', text: memberLine({}).replace('"line":3', '"line":3.5') },
    { name: 'a line given as text', text: memberLine({}).replace('"line":3', '"line":"3"') },
    { name: 'no line', text: JSON.stringify({ memberId: 'm2', skip: 'x' }) },
    { name: 'an e-mail that is a number', text: memberLine({ email: 12345 }) },
    { name: 'a consent flag given as text', text: memberLine({ unsubscribeEmail: 'yes' }) },
    { name: 'a missing member field', text: memberLine({ unsubscribeTexting: undefined }) },
    { name: 'a memberId that is a number', text: memberLine({ memberId: 7 }) },
    { name: 'an unknown planned action', text: memberLine({}, { planned: { action: 'merge' } }) },
    {
      name: 'an unknown planned field',
      text: memberLine({}, { planned: { action: 'upsert', fields: ['email', 'name'] } }),
    },
    { name: 'a planned reason that is not text', text: memberLine({}, { planned: { action: 'delete', reason: 4 } }) },
    { name: 'a skip that is not text', text: JSON.stringify({ line: 3, memberId: 'm2', skip: true }) },
    {
      name: 'a skip with a memberId that is not text',
      text: JSON.stringify({ line: 3, memberId: null, skip: 'bad row' }),
    },
    // A verify run's keys go together: an export line or `absent` without the repair it checks is no entry.
    { name: 'an export line without a repair', text: memberLine({}, { exportLine: 4 }) },
    { name: 'absent without a repair', text: memberLine({}, { absent: true }) },
    { name: 'an unknown repaired event', text: memberLine({}, { repair: { event: 'merge', deliveredAt: 1 } }) },
    { name: 'a repair without its time', text: memberLine({}, { repair: { event: 'upsert' } }) },
    { name: 'a repair beside a plan', text: memberLine({}, { repair: REPAIR, planned: { action: 'upsert' } }) },
    { name: 'an export line 0', text: memberLine({}, { repair: REPAIR, exportLine: 0 }) },
    { name: 'absent given as false', text: memberLine({}, { repair: REPAIR, absent: false }) },
    { name: 'an absent skip', text: JSON.stringify({ line: 3, skip: 'x', repair: REPAIR, absent: true }) },
  ];
  it.each(badLines)('rejects a line with $name, naming its byte offset only', async ({ text }) => {
    const workFile = path.join(dir, `bad-shape-${caseCount++}.jsonl`);
    await writeFile(workFile, `${GOOD}\n${text}\n`);
    const error = await readWorkBatch(workFile, 0, 5).then(
      () => new Error('expected a rejection'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toBe(
      `work file ${JSON.stringify(workFile)} is corrupt: the line at byte ${GOOD.length + 1} is not a work entry`,
    );
    // The row's content never (the temporary directory's random name may hold "m2": it is left out).
    expect(error.message.replace(JSON.stringify(workFile), '')).not.toMatch(/example|m2/);
    expect((await readWorkBatch(workFile, 0, 1)).entries).toEqual([
      { line: 2, member: member('m1', { mobileNumber: '010', unsubscribeEmail: true }) },
    ]);
  });

  it('reads every shape prepare writes, as new objects holding only the known keys', async () => {
    const workFile = path.join(dir, `shapes-${caseCount++}.jsonl`);
    const lines = [
      memberLine(
        { extra: 'dropped' },
        {
          planned: { action: 'upsert', fields: ['email', 'unsubscribeTexting'], reason: 'r', note: 'dropped' },
          more: 1,
        },
      ),
      memberLine({}, { planned: { action: 'delete' } }),
      JSON.stringify({ line: 4, memberId: 'm3', skip: 'invalid email', member: 'not a member' }),
      JSON.stringify({ line: 5, skip: 'no memberId' }),
      // A member entry whose plan is unreadable but which carries a skip reason reads as that skip.
      memberLine({}, { line: 6, planned: { action: 'merge' }, skip: 'planned row unreadable' }),
    ];
    await writeFile(workFile, `${lines.join('\n')}\n`);
    const m2 = member('m2', { email: 'e@example.com', unsubscribeTexting: false });
    const { entries } = await readWorkBatch(workFile, 0, 10);
    expect(entries).toStrictEqual([
      { line: 3, member: m2, planned: { action: 'upsert', fields: ['email', 'unsubscribeTexting'], reason: 'r' } },
      { line: 3, member: m2, planned: { action: 'delete' } },
      { line: 4, memberId: 'm3', skip: 'invalid email' },
      { line: 5, skip: 'no memberId' },
      { line: 6, skip: 'planned row unreadable' },
    ]);
  });

  it("reads a verify run's entries with the repair they check, as new objects holding only the known keys", async () => {
    const workFile = path.join(dir, `verify-shapes-${caseCount++}.jsonl`);
    const upsert = { event: 'upsert', fields: ['email'], deliveredAt: 1700000000001, note: 'dropped' };
    const lines = [
      memberLine({}, { repair: REPAIR, exportLine: 9 }),
      memberLine({ email: null, unsubscribeTexting: null }, { line: 4, repair: upsert, absent: true }),
      JSON.stringify({ line: 5, memberId: 'm5', skip: 'invalid email', repair: REPAIR, exportLine: 2 }),
    ];
    await writeFile(workFile, `${lines.join('\n')}\n`);
    const { entries } = await readWorkBatch(workFile, 0, 10);
    expect(entries).toStrictEqual([
      {
        line: 3,
        member: member('m2', { email: 'e@example.com', unsubscribeTexting: false }),
        repair: { event: 'delete', reason: 'not-found', deliveredAt: 1700000000000 },
        exportLine: 9,
      },
      {
        line: 4,
        member: member('m2'),
        repair: { event: 'upsert', fields: ['email'], deliveredAt: 1700000000001 },
        absent: true,
      },
      {
        line: 5,
        memberId: 'm5',
        skip: 'invalid email',
        repair: { event: 'delete', reason: 'not-found', deliveredAt: 1700000000000 },
        exportLine: 2,
      },
    ]);
  });
});

// The work-store contract (what the activities use), on both stores: the file store is the functions above.
let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});

describe.each<StoreKind>(['file', 'postgres'])('%s work store', (kind) => {
  const stores = () => createStoresFor(kind, pg);

  it.each([1, 3, 4, 10, 11])('writes the normalised set once and reads it back in batches of %i', async (batchSize) => {
    const { work } = await stores();
    const { spec, workFile } = await setUp(SOURCE);
    const summary = await work.write(spec, workFile, undefined, { workflowId: 'wf-work' });
    expect(summary).toMatchObject({ rows: 10, members: 5, skipped: 5 });
    const batches = await work.buildBatches(workFile, batchSize);
    expect(batches).toBe(Math.ceil(10 / batchSize));
    const entries: SourceEntry[] = [];
    for (let k = 0; k < batches; k++) {
      const batch = await work.readBatch(workFile, batchSize, k);
      expect(batch.length).toBe(k < batches - 1 ? batchSize : 10 - batchSize * (batches - 1));
      entries.push(...batch);
    }
    expect(entries).toEqual(EXPECTED);
    await expect(work.readBatch(workFile, batchSize, batches)).rejects.toThrow(/beyond the end/);
  });

  it('is idempotent: a second write returns the stored summary without re-reading the source', async () => {
    const { work } = await stores();
    const { spec, workFile } = await setUp(SOURCE);
    const first = await work.write(spec, workFile, undefined, { workflowId: 'wf-work' });
    await rm(spec.path);
    expect(await work.write(spec, workFile, undefined, { workflowId: 'wf-work' })).toEqual(first);
    expect(await work.buildBatches(workFile, 100)).toBe(1);
    expect(await work.readBatch(workFile, 100, 0)).toEqual(EXPECTED);
  });

  it('applies a selection and numbers batches over what it kept', async () => {
    const { work } = await stores();
    const { spec, workFile } = await setUp(SOURCE);
    const summary = await work.write(spec, workFile, (e) => ('member' in e ? e : undefined), { workflowId: 'wf-work' });
    expect(summary).toMatchObject({ rows: 5, members: 5, skipped: 0 });
    expect(await work.buildBatches(workFile, 2)).toBe(3);
    expect((await work.readBatch(workFile, 2, 2)).map((e) => e.line)).toEqual([12]);
  });

  it('a configuration error in the source leaves no work set', async () => {
    const { work } = await stores();
    const { spec, workFile } = await setUp('memberId,email\nm1,x\n');
    await expect(work.write(spec, workFile, undefined, { workflowId: 'wf-work' })).rejects.toBeInstanceOf(
      SourceConfigError,
    );
    await expect(work.readBatch(workFile, 10, 0)).rejects.toThrow();
  });

  it('cleanupBackfill removes the work set and pending replays of a completed run, or keeps them when told to', async () => {
    const { work, pending } = await stores();
    const { spec, workFile } = await setUp(SOURCE);
    const pendingDir = path.join(path.dirname(workFile), 'pending');
    const paths = {
      dir: path.dirname(workFile),
      workFile,
      auditPath: path.join(path.dirname(workFile), 'audit.jsonl'),
      pendingDir,
    };
    await work.write(spec, workFile, undefined, { workflowId: 'wf-clean' });
    await work.buildBatches(workFile, 4);
    await pending.put(pendingDir, {
      line: 2,
      memberId: 'm1',
      event: 'upsert',
      webhookId: 'msg_1',
      payload: {} as never,
      base: { line: 2, backfill: 'wf-clean' } as never,
    });
    await pending.settle(pendingDir, 2);
    await pending.put(pendingDir, {
      line: 3,
      memberId: 'm2',
      event: 'upsert',
      webhookId: 'msg_2',
      payload: {} as never,
      base: { line: 3, backfill: 'wf-clean' } as never,
    });

    expect(await cleanupBackfill({ work, pending, keep: true }, { paths })).toEqual({
      kept: true,
      workRemoved: 0,
      pendingRemoved: 0,
    });
    expect(await work.readBatch(workFile, 4, 0)).toHaveLength(4);

    const removed = await cleanupBackfill({ work, pending, keep: false }, { paths });
    expect(removed.kept).toBe(false);
    expect(removed.workRemoved).toBe(kind === 'file' ? 3 : 10); // file: members.jsonl, its summary, its .b4.idx; postgres: rows
    expect(removed.pendingRemoved).toBe(2);
    await expect(work.readBatch(workFile, 4, 0)).rejects.toThrow();
    expect(await pending.lines(pendingDir, [2, 3])).toEqual({ pending: new Set(), settled: new Set() });
    expect(await cleanupBackfill({ work, pending, keep: false }, { paths })).toEqual({
      kept: false,
      workRemoved: 0,
      pendingRemoved: 0,
    });
  });

  it('webhook-backfill purge --workflow-id removes what a run left and says what', async () => {
    const { work, pending, env } = await stores();
    const dataDir = path.join(dir, `purge-${kind}`);
    const runDir = path.join(dataDir, 'wf-purge', 'run-1');
    const { spec } = await setUp(SOURCE);
    const workFile = path.join(runDir, 'members.jsonl');
    await work.write(spec, workFile, undefined, { workflowId: 'wf-purge' });
    await pending.put(path.join(runDir, 'pending'), {
      line: 2,
      memberId: 'm1',
      event: 'upsert',
      webhookId: 'msg_1',
      payload: {} as never,
      base: { line: 2, backfill: 'wf-purge' } as never,
    });

    const run = async () => {
      let out = '';
      let err = '';
      const sink = (add: (t: string) => void) =>
        ({
          write: (chunk: string, cb?: () => void) => (add(String(chunk)), cb?.(), true),
        }) as unknown as NodeJS.WritableStream;
      const io = {
        stdout: sink((t) => (out += t)),
        stderr: sink((t) => (err += t)),
        env: { ...env, BACKFILL_DATA_DIR: dataDir },
        cwd: dir,
        now: () => new Date(),
        sleep: async () => undefined,
      };
      const code = await main(['purge', '--workflow-id', 'wf-purge'], io);
      return { code, out, err };
    };
    const first = await run();
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    if (kind === 'file') expect(first.out).toMatch(/removed .*run-1: 2 work file\(s\), 1 pending replay/);
    else
      expect(first.out).toMatch(
        /removed work set .*members\.jsonl from PostgreSQL: 10 row\(s\)\nremoved pending replays .*pending from PostgreSQL: 1 row\(s\)/,
      );
    expect(first.out).toMatch(/audit log is kept/);
    await expect(work.readBatch(workFile, 10, 0)).rejects.toThrow();
    const second = await run();
    expect(second.out).toMatch(/nothing left of wf-purge/);
  });
});
