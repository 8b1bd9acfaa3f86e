// The member-source registry (src/source/source-kinds.ts): each kind validates, resolves and describes its own
// input; nothing outside src/source/ switches on a source's type.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSource } from '../../src/source/read-source';
import {
  describeSource,
  readSourceChunks,
  resolveSource,
  SOURCE_KINDS,
  sourceInputSchema,
} from '../../src/source/source-kinds';
import type { SourceSpec } from '../../workflows/definitions';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'source-kinds-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('sourceInputSchema: the kind named by type checks the input', () => {
  it.each([
    [
      { type: 'csv', path: 'a.csv' },
      { type: 'csv', path: 'a.csv' },
    ],
    [
      { type: 'jsonl', path: '/x/a.jsonl' },
      { type: 'jsonl', path: '/x/a.jsonl' },
    ],
    [
      { type: 'postgres', table: 'crm.members' },
      { type: 'postgres', table: 'crm.members' },
    ],
    [
      { type: 'postgres', query: 'SELECT * FROM m;' },
      { type: 'postgres', query: 'SELECT * FROM m' },
    ],
    [
      { type: 'mysql', table: 'shop.members', columns: { memberId: 'member_no' } },
      { type: 'mysql', table: 'shop.members', columns: { memberId: 'member_no' } },
    ],
  ])('%j is accepted as %j', (input, want) => {
    expect(sourceInputSchema.parse(input)).toEqual(want);
  });

  it.each([
    [{ type: 'xml', path: '/a' }, /must be "csv" or "jsonl" \(a file, with "path"\), "postgres" .* or "mysql"/],
    [{ type: 'xml' }, /is required/],
    [{ type: 'csv', path: '' }, /must not be empty/],
    [{ type: 'csv', path: 'a', table: 't' }, /Unrecognized key/i],
    [{ type: 'postgres', table: 'a;b' }, /must be a plain SQL name/],
    [{ type: 'mysql', table: 'a`b' }, /must be a plain SQL name/],
    ['members.csv', /expected object/],
  ])('%j is refused (%s)', (input, problem) => {
    const result = sourceInputSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.message).join('; ')).toMatch(problem);
  });
});

describe('resolveSource and describeSource', () => {
  it('a file is resolved to an absolute path, and must lie under BACKFILL_SOURCE_DIRS when it is set', async () => {
    const file = path.join(dir, 'm.csv');
    await writeFile(file, 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting\nm1,,,,\n');
    expect(resolveSource({ type: 'csv', path: file }, {})).toEqual({ type: 'csv', path: file });
    expect(resolveSource({ type: 'csv', path: file }, { sourceDirs: [dir] })).toEqual({ type: 'csv', path: file });
    expect(resolveSource({ type: 'csv', path: '/etc/passwd' }, { sourceDirs: [dir] })).toEqual({
      problem: `source.path "/etc/passwd" is not under the worker's BACKFILL_SOURCE_DIRS (${dir})`,
    });
    expect(resolveSource({ type: 'csv', path: path.join(dir, '../escape.csv') }, { sourceDirs: [dir] })).toHaveProperty(
      'problem',
    );
  });

  it("a database source gets the worker's connection string, which never comes from the input", () => {
    const spec: SourceSpec = { type: 'postgres', table: 'members' };
    expect(resolveSource(spec, { databaseUrl: 'postgres://u:p@db/x', sourceDirs: [dir] })).toEqual({
      type: 'postgres',
      table: 'members',
      databaseUrl: 'postgres://u:p@db/x',
    });
    expect(resolveSource({ type: 'mysql', table: 'members' }, { mysqlUrl: 'mysql://u:p@db/shop' })).toEqual({
      type: 'mysql',
      table: 'members',
      mysqlUrl: 'mysql://u:p@db/shop',
    });
  });

  it.each([
    [{ type: 'csv', path: '/data/m.csv' }, 'csv: /data/m.csv'],
    [{ type: 'jsonl', path: 'm.jsonl' }, 'jsonl: m.jsonl'],
    [{ type: 'postgres', table: 'crm.members' }, 'postgres: crm.members'],
    [{ type: 'postgres', query: 'SELECT email FROM secret_table' }, 'postgres: query'],
    [{ type: 'mysql', table: 'shop.members' }, 'mysql: shop.members'],
  ] as [SourceSpec, string][])('%j is shown as %j (never SQL text)', (spec, label) => {
    expect(describeSource(spec)).toBe(label);
  });

  it('every kind names its types once; together they are the four the input knows', () => {
    const types = SOURCE_KINDS.flatMap((k) => [...k.types]);
    expect(types).toEqual(['csv', 'jsonl', 'postgres', 'mysql']);
    expect(new Set(types).size).toBe(types.length);
  });
});

describe('readSourceChunks', () => {
  it('yields the same rows as readSource, in non-empty chunks', async () => {
    const file = path.join(dir, 'many.csv');
    const rows = Array.from({ length: 5000 }, (_, i) => `m${i},,e${i}@example.com,false,"x, y"`);
    await writeFile(file, `memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting\n${rows.join('\n')}\n`);
    const chunks: number[] = [];
    const viaChunks: unknown[] = [];
    for await (const chunk of readSourceChunks({ type: 'csv', path: file })) {
      chunks.push(chunk.length);
      viaChunks.push(...chunk);
    }
    const viaRows: unknown[] = [];
    for await (const entry of readSource({ type: 'csv', path: file })) viaRows.push(entry);
    expect(viaChunks).toEqual(viaRows);
    expect(viaRows).toHaveLength(5000);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((n) => n > 0)).toBe(true);
  });

  it('an unknown type (input that skipped validation) fails at the first iteration, naming it', async () => {
    const iterator = readSourceChunks({ type: 'xlsx', path: '/a.xlsx' } as unknown as SourceSpec)[
      Symbol.asyncIterator
    ]();
    await expect(iterator.next()).rejects.toThrow(
      /unknown source type "xlsx" \(expected "csv", "jsonl", "postgres" or "mysql"\)/,
    );
  });
});

describe('one place knows the kinds', () => {
  const files = (root: string): string[] =>
    readdirSync(root).flatMap((name) => {
      const p = path.join(root, name);
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });
  it('no product file outside src/source/ switches on a source type', () => {
    const root = path.resolve(__dirname, '../..');
    const product = ['src', 'activities', 'workflows']
      .flatMap((d) => files(path.join(root, d)))
      .filter((f) => !f.includes(`${path.sep}src${path.sep}source${path.sep}`));
    const switching = product.filter((f) =>
      /source\.type\s*[!=]==|type\s*[!=]==\s*'(postgres|mysql|csv|jsonl)'/.test(readFileSync(f, 'utf8')),
    );
    expect(switching.map((f) => path.relative(root, f))).toEqual([]);
  });
});
