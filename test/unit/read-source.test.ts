import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError } from '../../src/source/errors';
import { parse as parseCsvText } from 'csv-parse/sync';
import { splitCsvRecord } from '../../src/source/file-source';
import { readSource, type ResolvedSource } from '../../src/source/read-source';
import { SeededRng } from '../../dev/seeded-rng';
import type { SourceEntry, StoredMember } from '../../src/domain/types';

let dir: string;
let fixtureCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'read-source-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(content: string | Buffer, ext: 'csv' | 'jsonl'): Promise<string> {
  const file = path.join(dir, `fixture-${fixtureCount++}.${ext}`);
  await writeFile(file, content);
  return file;
}

async function collect(spec: ResolvedSource): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const entry of readSource(spec)) entries.push(entry);
  return entries;
}

const readCsv = async (content: string | Buffer) => collect({ type: 'csv', path: await fixture(content, 'csv') });
const readJsonl = async (content: string | Buffer) => collect({ type: 'jsonl', path: await fixture(content, 'jsonl') });

const HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';

function member(memberId: string, values: Partial<StoredMember> = {}): StoredMember {
  return { memberId, mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: null, ...values };
}

describe('readSource: CSV', () => {
  const cases: { name: string; content: string | Buffer; expected: SourceEntry[] }[] = [
    {
      name: 'UTF-8 BOM before the header',
      content: `\uFEFF${HEADER}\nm1,010-1234-5678,a@example.com,true,false\n`,
      expected: [
        {
          line: 2,
          member: member('m1', {
            mobileNumber: '010-1234-5678',
            email: 'a@example.com',
            unsubscribeEmail: true,
            unsubscribeTexting: false,
          }),
        },
      ],
    },
    {
      name: 'CRLF line ends (no CR left in the last column) and no final line end',
      content: `memberId,mobileNumber,unsubscribeEmail,unsubscribeTexting,email\r\nm1,,no,yes,a@example.com\r\nm2,,,,b@example.com`,
      expected: [
        {
          line: 2,
          member: member('m1', { email: 'a@example.com', unsubscribeEmail: false, unsubscribeTexting: true }),
        },
        { line: 3, member: member('m2', { email: 'b@example.com' }) },
      ],
    },
    {
      name: 'quoted fields with commas, doubled quotes and line breaks; later line numbers count them',
      content: `${HEADER}\nm1,"010,1234","say ""hi""\nsecond line\nthird",yes,NO\nm2,,,,\n"m,3","",x@example.com,,\n`,
      expected: [
        {
          line: 2,
          member: member('m1', {
            mobileNumber: '010,1234',
            email: 'say "hi"\nsecond line\nthird',
            unsubscribeEmail: true,
            unsubscribeTexting: false,
          }),
        },
        { line: 5, member: member('m2') },
        { line: 6, member: member('m,3', { email: 'x@example.com' }) },
      ],
    },
    {
      name: 'CRLF inside a quoted field in a CRLF file',
      content: `${HEADER}\r\nm1,,"a\r\nb",,\r\nm2,,,,\r\n`,
      expected: [
        { line: 2, member: member('m1', { email: 'a\r\nb' }) },
        { line: 4, member: member('m2') },
      ],
    },
    {
      name: 'blank and whitespace-only lines are ignored but counted',
      content: `${HEADER}\n\nm1,,,,\n   \n\r\n\t\nm2,,,,\n\n\n`,
      expected: [
        { line: 3, member: member('m1') },
        { line: 7, member: member('m2') },
      ],
    },
    {
      name: 'columns in another order, extra columns ignored, header names trimmed',
      content: `note, unsubscribeTexting ,email,memberId,unsubscribeEmail,mobileNumber,other\nhello,1,e@example.com,m1,0,+821012345678,zzz\n`,
      expected: [
        {
          line: 2,
          member: member('m1', {
            email: 'e@example.com',
            mobileNumber: '+821012345678',
            unsubscribeEmail: false,
            unsubscribeTexting: true,
          }),
        },
      ],
    },
    {
      name: 'booleans in any case, trimmed; empty is null',
      content: `${HEADER}\na,,, Yes ,no\nb,,,TRUE,False\nc,,,1,0\nd,,,  ,\ne,,,yEs,nO\n`,
      expected: [
        { line: 2, member: member('a', { unsubscribeEmail: true, unsubscribeTexting: false }) },
        { line: 3, member: member('b', { unsubscribeEmail: true, unsubscribeTexting: false }) },
        { line: 4, member: member('c', { unsubscribeEmail: true, unsubscribeTexting: false }) },
        { line: 5, member: member('d') },
        { line: 6, member: member('e', { unsubscribeEmail: true, unsubscribeTexting: false }) },
      ],
    },
    {
      name: 'invalid booleans skip the row, naming line and field',
      content: `${HEADER}\nm1,,,maybe,true\nm2,,,true,2\nm3,,,y,n\n`,
      expected: [
        { line: 2, memberId: 'm1', skip: 'unsubscribeEmail: invalid boolean' },
        { line: 3, memberId: 'm2', skip: 'unsubscribeTexting: invalid boolean' },
        { line: 4, memberId: 'm3', skip: 'unsubscribeEmail: invalid boolean; unsubscribeTexting: invalid boolean' },
      ],
    },
    {
      name: 'empty or over-long memberId skips the row (256 characters is still fine)',
      content: `${HEADER}\n,010,,,\n   ,,,,\n${'x'.repeat(257)},,,,\n${'가'.repeat(256)},,,,\n`,
      expected: [
        { line: 2, skip: 'empty memberId' },
        { line: 3, skip: 'empty memberId' },
        { line: 4, skip: 'memberId longer than 256 characters' },
        { line: 5, member: member('가'.repeat(256)) },
      ],
    },
    {
      name: 'memberIds with spaces, / @ ? # and non-ASCII are kept exactly, after trimming',
      content: `${HEADER}\n  user 1  ,,,,\na/b,,,,\nx@example.com,,,,\nq?x=1&y=2,,,,\nh#1,,,,\n회원-001,,,,\n"ü ñ 😀",,,,\n`,
      expected: ['user 1', 'a/b', 'x@example.com', 'q?x=1&y=2', 'h#1', '회원-001', 'ü ñ 😀'].map((id, i) => ({
        line: i + 2,
        member: member(id),
      })),
    },
    {
      name: 'a real U+FFFD character is valid UTF-8 and kept (only undecodable bytes skip a row)',
      content: `${HEADER}\nm\uFFFD1,,caf\uFFFD@example.com,,\n`,
      expected: [{ line: 2, member: member('m\uFFFD1', { email: 'caf\uFFFD@example.com' }) }],
    },
    {
      name: 'rows with too few or too many fields are skipped (shifted columns)',
      content: `${HEADER}\nm1,,,\nm2,,,,,\nm3,,,,\n`,
      expected: [
        { line: 2, skip: 'has 4 fields, the header has 5' },
        { line: 3, skip: 'has 6 fields, the header has 5' },
        { line: 4, member: member('m3') },
      ],
    },
    {
      name: 'malformed quoting skips the row and the next row is read',
      content: `${HEADER}\nm1,"010"x,,,\nm2,01"0,,,\nm3,,,,\n`,
      expected: [
        { line: 2, skip: 'malformed CSV: text after a closing quote' },
        { line: 3, skip: 'malformed CSV: quote inside an unquoted field' },
        { line: 4, member: member('m3') },
      ],
    },
    {
      name: 'duplicates are not this layer’s business: both rows come through',
      content: `${HEADER}\nm1,,,,\nm1,,,,\n`,
      expected: [
        { line: 2, member: member('m1') },
        { line: 3, member: member('m1') },
      ],
    },
  ];

  it.each(cases)('$name', async ({ content, expected }) => {
    expect(await readCsv(content)).toEqual(expected);
  });

  it('skips a 1 MB line with its line number and reads the next row', async () => {
    const huge = `m2,${'9'.repeat(1024 * 1024)},,,`;
    const entries = await readCsv(`${HEADER}\nm1,,,,\n${huge}\nm3,,,,\n`);
    expect(entries).toEqual([
      { line: 2, member: member('m1') },
      { line: 3, skip: 'record larger than 64 KiB' },
      { line: 4, member: member('m3') },
    ]);
  });

  it('skips a record over 64 KiB made of many short quoted lines, and counts its lines', async () => {
    const longField = Array.from({ length: 10_000 }, () => 'short line').join('\n'); // ~110 KB, 10 000 lines
    const entries = await readCsv(`${HEADER}\nm1,,"${longField}",,\nm2,,,,\n`);
    expect(entries).toEqual([
      { line: 2, skip: 'record larger than 64 KiB' },
      { line: 10_002, member: member('m2') },
    ]);
  });

  it('accepts a record of exactly 64 KiB', async () => {
    const row = `m1,,${'e'.repeat(64 * 1024 - 'm1,,,,'.length)},,`;
    expect(Buffer.byteLength(row)).toBe(64 * 1024);
    const [entry] = await readCsv(`${HEADER}\r\n${row}\r\n`);
    expect(entry).toMatchObject({ line: 2, member: { memberId: 'm1' } });
  });

  it('skips a row with invalid UTF-8 and reads the next one', async () => {
    const content = Buffer.concat([
      Buffer.from(`${HEADER}\nm1,,`),
      Buffer.from([0xc3, 0x28, 0xff]), // a broken two-byte sequence and a byte never valid in UTF-8
      Buffer.from(',,\nm2,,é@example.com,,\n'),
    ]);
    expect(await readCsv(content)).toEqual([
      { line: 2, skip: 'invalid UTF-8' },
      { line: 3, member: member('m2', { email: 'é@example.com' }) },
    ]);
  });

  it('reads rows spanning read chunks, multi-byte characters and CRLFs split across them', async () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => `회원-${i},,"주소 ${i}\r\n둘째 줄",true,`);
    const entries = await readCsv(`${HEADER}\r\n${rows.join('\r\n')}\r\n`);
    expect(entries).toHaveLength(5_000);
    entries.forEach((entry, i) => {
      expect(entry).toEqual({
        line: 2 + 2 * i,
        member: member(`회원-${i}`, { email: `주소 ${i}\r\n둘째 줄`, unsubscribeEmail: true }),
      });
    });
  });

  it('frames records as a byte-by-byte scan would, over many read chunks of random quoting', async () => {
    // The reference: RFC 4180 framing one character at a time (quotes, commas and line feeds are ASCII, so
    // characters and bytes agree), as the reader did before it skipped quote-free stretches natively.
    const reference = (text: string): { line: number; memberId: string }[] => {
      const records: { line: number; memberId: string }[] = [];
      let line = 1;
      let start = 0;
      let startLine = 1;
      let state: 'start' | 'unquoted' | 'quoted' | 'quoteInQuoted' = 'start';
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c === '\n') {
          line++;
          if (state === 'quoted') continue;
          const record = text.slice(start, i).replace(/\r$/, '');
          if (record.trim() !== '') records.push({ line: startLine, memberId: record.split(',')[0]! });
          start = i + 1;
          startLine = line;
          state = 'start';
        } else if (state === 'start') state = c === '"' ? 'quoted' : c === ',' ? 'start' : 'unquoted';
        else if (state === 'unquoted') state = c === ',' ? 'start' : 'unquoted';
        else if (state === 'quoted') state = c === '"' ? 'quoteInQuoted' : 'quoted';
        else state = c === '"' ? 'quoted' : c === ',' ? 'start' : 'unquoted';
      }
      return records.slice(1); // the header
    };
    const rng = new SeededRng(2411);
    const cells = [
      '',
      'plain text',
      '"a, quoted ""cell"""',
      '"two\nlines"',
      '"crlf\r\ninside"',
      'stray"quote', // malformed: the record is skipped, the next one read
      '"closed"then text', // malformed too
      '회원 é',
    ];
    const rows = Array.from({ length: 8_000 }, (_, i) =>
      [`m${i}`, rng.pick(cells), rng.pick(cells), rng.pick(['true', 'false', '']), rng.pick(['', 'no'])].join(','),
    );
    const text = `${HEADER}\n${rows.map((row, i) => (i % 7 === 0 ? `${row}\r\n\n` : `${row}\n`)).join('')}`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(4 * 64 * 1024);
    const entries = await readCsv(text);
    const want = reference(text);
    expect(want).toHaveLength(8_000);
    expect(entries.map((e) => e.line)).toEqual(want.map((r) => r.line));
    // A malformed record is skipped without a memberId (its cells cannot be told apart); every other is its row.
    entries.forEach((e, i) => {
      if ('member' in e) expect(e.member.memberId).toBe(want[i]!.memberId);
    });
    // Both kinds of record are in the file.
    expect(entries.filter((e) => 'skip' in e).length).toBeGreaterThan(1_000);
    expect(entries.filter((e) => 'member' in e).length).toBeGreaterThan(1_000);
  });

  it('reads a quoted cell that starts right after a comma ending a read chunk', async () => {
    // The second row's opening quote is the first byte of the second 64 KiB read: the comma before it, the last
    // byte of the first read, decides that the quote opens a field (and the line feed in it is data).
    const prefix = `${HEADER}\nm1,`;
    const filler = 'x'.repeat(64 * 1024 - Buffer.byteLength(prefix) - ',,,\nm2,'.length);
    const text = `${prefix}${filler},,,\nm2,"a\nb",c,true,\nm3,,,,\n`;
    expect(text.indexOf('"')).toBe(64 * 1024);
    expect(text[64 * 1024 - 1]).toBe(',');
    expect(await readCsv(text)).toEqual([
      { line: 2, member: member('m1', { mobileNumber: filler }) },
      { line: 3, member: member('m2', { mobileNumber: 'a\nb', email: 'c', unsubscribeEmail: true }) },
      { line: 5, member: member('m3') },
    ]);
  });

  it('never puts cell values in skip reasons', async () => {
    const entries = await readCsv(
      `${HEADER}\nm1,"+821099998888"oops,secret@example.com,,\nm2,,secret@example.com,maybe-secret,\n`,
    );
    for (const entry of entries) {
      expect('skip' in entry).toBe(true);
      if ('skip' in entry) expect(entry.skip).not.toMatch(/secret|8888/);
    }
  });
});

describe('readSource: JSONL', () => {
  const cases: { name: string; content: string | Buffer; expected: SourceEntry[] }[] = [
    {
      name: 'good lines, with JSON booleans and boolean strings',
      content: [
        JSON.stringify({
          memberId: 'm1',
          mobileNumber: '+821012345678',
          email: 'a@example.com',
          unsubscribeEmail: true,
          unsubscribeTexting: false,
        }),
        JSON.stringify({ memberId: ' m2 ', unsubscribeEmail: ' YES ', unsubscribeTexting: 'no', extra: { nested: 1 } }),
        JSON.stringify({ memberId: 'm3', unsubscribeEmail: '1', unsubscribeTexting: 0, email: '' }),
      ].join('\n'),
      expected: [
        {
          line: 1,
          member: member('m1', {
            mobileNumber: '+821012345678',
            email: 'a@example.com',
            unsubscribeEmail: true,
            unsubscribeTexting: false,
          }),
        },
        { line: 2, member: member('m2', { unsubscribeEmail: true, unsubscribeTexting: false }) },
        { line: 3, member: member('m3', { unsubscribeEmail: true, unsubscribeTexting: false }) },
      ],
    },
    {
      name: 'missing keys and nulls are null; a numeric memberId becomes its decimal string',
      content: `{"memberId":"m1"}\n{"memberId":123,"email":null,"unsubscribeEmail":null}\n`,
      expected: [
        { line: 1, member: member('m1') },
        { line: 2, member: member('123') },
      ],
    },
    {
      name: 'blank lines ignored, BOM and CRLF handled, line numbers physical',
      content: `\uFEFF{"memberId":"m1"}\r\n\r\n  \r\n{"memberId":"m/2 #?@ 회원"}\r\n`,
      expected: [
        { line: 1, member: member('m1') },
        { line: 4, member: member('m/2 #?@ 회원') },
      ],
    },
    {
      name: 'broken JSON, non-object lines and bad values are skipped; the rest is read',
      content: [
        '{"memberId":"m1"',
        '[{"memberId":"m2"}]',
        '42',
        '"m3"',
        'null',
        '{"memberId":"m4","email":5}',
        '{"memberId":"m5","unsubscribeTexting":"perhaps"}',
        '{"memberId":""}',
        '{"email":"x@example.com"}',
        '{"memberId":true}',
        '{"memberId":"m6"}',
      ].join('\n'),
      expected: [
        { line: 1, skip: 'not valid JSON' },
        { line: 2, skip: 'not a JSON object' },
        { line: 3, skip: 'not a JSON object' },
        { line: 4, skip: 'not a JSON object' },
        { line: 5, skip: 'not a JSON object' },
        { line: 6, memberId: 'm4', skip: 'email: expected a string' },
        { line: 7, memberId: 'm5', skip: 'unsubscribeTexting: invalid boolean' },
        { line: 8, skip: 'empty memberId' },
        { line: 9, skip: 'empty memberId' },
        { line: 10, skip: 'memberId: expected a string' },
        { line: 11, member: member('m6') },
      ],
    },
    {
      name: 'invalid UTF-8 line skipped, next line read',
      content: Buffer.concat([
        Buffer.from('{"memberId":"m1","email":"'),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('"}\n{"memberId":"m2"}\n'),
      ]),
      expected: [
        { line: 1, skip: 'invalid UTF-8' },
        { line: 2, member: member('m2') },
      ],
    },
    {
      name: 'a 1 MB line is skipped, next line read',
      content: `{"memberId":"m1","email":"${'a'.repeat(1024 * 1024)}"}\n{"memberId":"m2"}\n`,
      expected: [
        { line: 1, skip: 'record larger than 64 KiB' },
        { line: 2, member: member('m2') },
      ],
    },
  ];

  it.each(cases)('$name', async ({ content, expected }) => {
    expect(await readJsonl(content)).toEqual(expected);
  });
});

describe('readSource: configuration errors', () => {
  const cases: { name: string; spec: () => Promise<ResolvedSource>; problem: RegExp }[] = [
    {
      name: 'missing file',
      spec: async () => ({ type: 'csv', path: path.join(dir, 'nope.csv') }),
      problem: /does not exist/,
    },
    {
      name: 'a directory',
      spec: async () => {
        const sub = path.join(dir, `a-directory-${fixtureCount++}.csv`);
        await mkdir(sub);
        return { type: 'csv', path: sub };
      },
      problem: /is a directory/,
    },
    {
      name: 'empty file (CSV)',
      spec: async () => ({ type: 'csv', path: await fixture('', 'csv') }),
      problem: /is empty/,
    },
    {
      name: 'empty file (JSONL)',
      spec: async () => ({ type: 'jsonl', path: await fixture('', 'jsonl') }),
      problem: /is empty/,
    },
    {
      name: 'only blank lines (CSV)',
      spec: async () => ({ type: 'csv', path: await fixture('\n\r\n  \n', 'csv') }),
      problem: /no CSV header/,
    },
    {
      name: 'only blank lines (JSONL)',
      spec: async () => ({ type: 'jsonl', path: await fixture('\n\n', 'jsonl') }),
      problem: /no rows/,
    },
    // Chosen: a header without rows is an error, since a real member table is never empty.
    {
      name: 'header only',
      spec: async () => ({ type: 'csv', path: await fixture(`${HEADER}\n\n`, 'csv') }),
      problem: /no data rows/,
    },
    {
      name: 'header missing columns, named in the message',
      spec: async () => ({
        type: 'csv',
        path: await fixture('memberId,mobileNumber,unsubscribeEmail,Email\nm1,,,x\n', 'csv'),
      }),
      problem: /lacks required column\(s\) email, unsubscribeTexting/,
    },
    {
      name: 'header naming a required column twice',
      spec: async () => ({ type: 'csv', path: await fixture(`${HEADER},email\nm1,,,,,\n`, 'csv') }),
      problem: /email more than once/,
    },
    {
      name: 'header not valid UTF-8',
      spec: async () => ({
        type: 'csv',
        path: await fixture(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${HEADER}\nm1,,,,\n`)]), 'csv'),
      }),
      problem: /header is not valid UTF-8/,
    },
    {
      name: 'a quoted field never closed (truncated file)',
      spec: async () => ({ type: 'csv', path: await fixture(`${HEADER}\nm1,,,,\nm2,,"unterminated\nm3,,,,\n`, 'csv') }),
      problem: /record starting on line 3 is never closed/,
    },
    {
      name: 'unknown source type',
      spec: async () => ({ type: 'xlsx' as 'csv', path: await fixture(`${HEADER}\nm1,,,,\n`, 'csv') }),
      problem: /unknown source type "xlsx"/,
    },
  ];

  it.each(cases)('$name', async ({ spec, problem }) => {
    const resolved = await spec();
    const error = await collect(resolved).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SourceConfigError);
    const message = (error as SourceConfigError).message;
    expect(message).toMatch(problem);
    expect(message).toContain(JSON.stringify((resolved as { path: string }).path));
    expect(message).not.toContain('\n');
  });

  it('reports configuration errors on iteration, not when called', async () => {
    const iterable = readSource({ type: 'csv', path: path.join(dir, 'nope.csv') });
    const iterator = iterable[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBeInstanceOf(SourceConfigError);
  });
});

describe('splitCsvRecord: the fast paths (no quote, well-formed quoting) split exactly as csv-parse does', () => {
  // csv-parse with the options read-source gives it, as the reference for every record without a quote.
  const reference = (text: string) =>
    parseCsvText(text, {
      bom: false,
      relax_column_count: true,
      skip_empty_lines: false,
      record_delimiter: ['\r\n', '\n'],
    })[0] as string[];

  const allRecords = (text: string) =>
    parseCsvText(text, {
      bom: false,
      relax_column_count: true,
      skip_empty_lines: false,
      record_delimiter: ['\r\n', '\n'],
    }) as string[][];

  it.each([
    ['plain', 'm1,+821012345678,a@example.com,false,true'],
    ['empty cells', ',,,,'],
    ['one cell', 'm1'],
    ['spaces and tabs kept', ' m1 ,\t+82 10 1234 5678 ,a@example.com , false,true '],
    ['a lone carriage return is data', 'm1,a\rb,c,d,e'],
    ['unicode', '회원-1,+821012345678,이메일@example.com,false,true'],
    ['trailing comma', 'm1,a,b,c,d,'],
  ])('%s', (_label, text) => {
    expect(splitCsvRecord(text)).toEqual(reference(text));
  });

  it('agrees with csv-parse on 2,000 random quote-free records', () => {
    const rng = new SeededRng(4181);
    const alphabet = ['a', 'Z', '0', ',', ',', ' ', '\t', '\r', '@', '+', '-', '.', '회', 'é', "'", ';'];
    for (let i = 0; i < 2000; i++) {
      const length = rng.int(1, 40);
      const text = Array.from({ length }, () => alphabet[rng.int(0, alphabet.length - 1)]).join('');
      if (text.trim() === '') continue; // framing drops blank records
      expect(splitCsvRecord(text), JSON.stringify(text)).toEqual(reference(text));
    }
  });

  it.each([
    ['a quoted cell with a comma', 'm1,"a, b",c'],
    ['escaped quotes', 'm1,"a ""b""",c'],
    ['quoted first and last cells', '"m1",b,"c"'],
    ['an empty quoted cell', 'm1,"",c'],
    ['only quotes', '""""'],
    ['a quoted line break and carriage return', 'm1,"a\r\nb",c'],
    ['a trailing comma after a quoted cell', '"m1",'],
    ['unicode inside quotes', '"회원, 1",é'],
  ])('reads well-formed quoting as csv-parse does: %s', (_label, text) => {
    expect(splitCsvRecord(text)).toEqual(reference(text));
  });

  it.each([
    ['m1,a"b,c', 'quote inside an unquoted field'],
    ['m1,"a"b,c', 'text after a closing quote'],
    ['m1,"a" ,c', 'text after a closing quote'],
    ['m1,"abc', 'unclosed quote'],
    ['m1, "a",c', 'quote inside an unquoted field'],
  ])('leaves malformed quoting to csv-parse, which names the problem: %j', (text, problem) => {
    expect(splitCsvRecord(text)).toEqual({ problem });
  });

  it('agrees with csv-parse on 5,000 random records with quotes: the same cells, or a problem for both', () => {
    const rng = new SeededRng(7919);
    const alphabet = ['a', '"', '"', '"', ',', ',', ' ', '\r', '\n', '회'];
    let quotedRead = 0;
    let problems = 0;
    for (let i = 0; i < 5000; i++) {
      const length = rng.int(1, 24);
      const text = Array.from({ length }, () => alphabet[rng.int(0, alphabet.length - 1)]).join('');
      // Framing ends a record at a line feed outside quotes and drops it: such texts are never one record.
      if (!text.includes('"') || text.trim() === '' || text.endsWith('\n')) continue;
      let want: string[] | undefined;
      try {
        const rows = allRecords(text);
        // A line feed outside quotes: framing would have ended the record there, so this is not one record.
        if (rows.length !== 1) continue;
        want = rows[0];
      } catch {
        want = undefined;
      }
      const got = splitCsvRecord(text);
      if (want) {
        quotedRead++;
        expect(got, JSON.stringify(text)).toEqual(want);
      } else {
        problems++;
        expect(Array.isArray(got), JSON.stringify(text)).toBe(false);
      }
    }
    // The random records exercise both sides.
    expect(quotedRead).toBeGreaterThan(100);
    expect(problems).toBeGreaterThan(100);
  });
});
