import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import type { DevServer } from '../../dev/temporal-cli';
import type { ChannelUser, OutcomeKind } from '../../src/domain/types';
import { webhookId } from '../../src/webhook/webhook-id';
import { createBackfillWorker, type BackfillWorker } from '../../src/worker-setup';
import { WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { readAudit, startStack, startTestServer, workflowBundle, type Stack } from '../support/stack';

// Issue 3, item 5: bad input, run through the real workflow on a real Temporal dev server. Every case
// ends either in a workflow failure that names the problem before any side effect (no lookup, no
// delivery, no file left behind), or in a completed run whose audit log holds exactly one entry per
// non-blank source row: good rows processed, bad rows `skipped` with their line and reason. Never a
// crash loop (no activity or workflow task is retried) and never a silent drop.

const HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';
/** Longest a case may take from start to result; a crash loop would run into it. */
const CASE_TIMEOUT_MS = 40_000;

// ---------------------------------------------------------------------------------------------------
// Case table

type Expected =
  | { line: number; outcome: 'unchanged'; memberId: string }
  /** fields: the differing fields the audit names; default ['email'] (rows built with otherEmail). */
  | { line: number; outcome: 'upsert'; memberId: string; fields?: string[] }
  | { line: number; outcome: 'skipped'; memberId?: string; reason: string };

interface Case {
  name: string;
  /** Channel Talk users this case needs (memberIds are unique across cases). */
  users?: ChannelUser[];
  /** Writes the case's files into `dir` and returns the workflow input. */
  input: (dir: string) => Promise<unknown>;
  /** Runs on a worker started without WEBHOOK_URL. */
  noWebhookWorker?: boolean;
  want:
    | { fail: 'InvalidSource' | 'InvalidInput' | 'InvalidConfig'; messageNames: string[]; namesFile?: boolean }
    | { rows: Expected[]; dryRun?: boolean };
}

/** A Channel Talk member with no phone, subscribed to everything, and this e-mail address. */
function user(memberId: string, email = `${emailLocal(memberId)}@example.com`): ChannelUser {
  return {
    id: `u-${emailLocal(memberId)}`,
    memberId,
    type: 'member',
    email,
    mobileNumber: null,
    unsubscribeEmail: false,
    unsubscribeTexting: false,
  };
}
function emailLocal(memberId: string): string {
  return Buffer.from(memberId, 'utf8').toString('hex');
}
/** The stored row matching `user(memberId)`: decided `unchanged`. */
const sameEmail = (memberId: string) => `${emailLocal(memberId)}@example.com`;
/** A stored e-mail that differs from Channel Talk's: decided `upsert` (a delivery is due). */
const otherEmail = (memberId: string) => `old-${emailLocal(memberId)}@example.org`;

function csvField(value: string): string {
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}
function csvRow(memberId: string, email: string, flags = 'false,false', extra: string[] = []): string {
  return [csvField(memberId), '', email, flags, ...extra].join(',');
}
const unchangedRow = (memberId: string, extra: string[] = []) =>
  csvRow(memberId, sameEmail(memberId), 'false,false', extra);
const upsertRow = (memberId: string, extra: string[] = []) =>
  csvRow(memberId, otherEmail(memberId), 'false,false', extra);
function jsonlRow(memberId: unknown, email: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    memberId,
    mobileNumber: null,
    email,
    unsubscribeEmail: false,
    unsubscribeTexting: false,
    ...extra,
  });
}

async function file(dir: string, name: string, content: string | Buffer): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
}
const csv = (p: string) => ({ source: { type: 'csv', path: p } });
const jsonl = (p: string) => ({ source: { type: 'jsonl', path: p } });

const ONE_MB = 1024 * 1024;
// memberIds that are valid and must reach Channel Talk (and the receiver) exactly as written.
const SPECIAL_IDS = [
  'sp a ce',
  'sp/slash',
  'sp@at',
  'sp?q=1&r=2',
  'sp#hash',
  'sp-한글-회원',
  'sp%20pct',
  'sp+plus',
  'sp/../dots',
  'ünïcødé-ß',
];

const CASES: Case[] = [
  // --- failures before any side effect ------------------------------------------------------------
  {
    name: 'missing file',
    input: async (dir) => csv(path.join(dir, 'does-not-exist.csv')),
    want: { fail: 'InvalidSource', messageNames: ['does not exist'], namesFile: true },
  },
  {
    name: 'unreadable: a directory',
    input: async (dir) => {
      const p = path.join(dir, 'a-directory.csv');
      await mkdir(p);
      return csv(p);
    },
    want: { fail: 'InvalidSource', messageNames: ['is a directory'], namesFile: true },
  },
  {
    name: 'unreadable: a FIFO (opening it would block forever)',
    input: async (dir) => {
      const p = path.join(dir, 'a-fifo.csv');
      execFileSync('mkfifo', [p]);
      return csv(p);
    },
    want: { fail: 'InvalidSource', messageNames: ['is not a regular file'], namesFile: true },
  },
  {
    name: 'empty file (0 bytes)',
    input: async (dir) => csv(await file(dir, 'empty.csv', '')),
    want: { fail: 'InvalidSource', messageNames: ['is empty'], namesFile: true },
  },
  {
    name: 'only blank lines, no header',
    input: async (dir) => csv(await file(dir, 'blank.csv', '\n  \n\t\n\n')),
    want: { fail: 'InvalidSource', messageNames: ['no CSV header'], namesFile: true },
  },
  {
    name: 'header and no data rows',
    input: async (dir) => csv(await file(dir, 'header-only.csv', `${HEADER}\n\n`)),
    want: { fail: 'InvalidSource', messageNames: ['no data rows'], namesFile: true },
  },
  {
    name: 'header without a required column',
    users: [user('hdr-1')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'no-column.csv',
          `memberId,mobileNumber,email,unsubscribeEmail\nhdr-1,,${sameEmail('hdr-1')},false\n`,
        ),
      ),
    want: { fail: 'InvalidSource', messageNames: ['lacks required column(s) unsubscribeTexting'], namesFile: true },
  },
  {
    name: 'header with columns misspelt (wrong case)',
    users: [user('hdr-2')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'wrong-case.csv',
          `memberid,mobileNumber,Email,unsubscribeEmail,unsubscribeTexting\n${unchangedRow('hdr-2')}\n`,
        ),
      ),
    want: { fail: 'InvalidSource', messageNames: ['memberId', 'email'], namesFile: true },
  },
  {
    name: 'a quoted field never closed (truncated file)',
    users: [user('trunc-1')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'truncated.csv',
          `${HEADER},name\n${unchangedRow('trunc-1', ['ok'])}\ntrunc-2,,x@example.com,false,false,"Kim, Jun\n`,
        ),
      ),
    want: { fail: 'InvalidSource', messageNames: ['line 3', 'never closed'], namesFile: true },
  },
  {
    name: 'JSONL with only blank lines',
    input: async (dir) => jsonl(await file(dir, 'blank.jsonl', '\n\n   \n')),
    want: { fail: 'InvalidSource', messageNames: ['only blank lines'], namesFile: true },
  },
  {
    name: 'workflow input: unknown source type',
    users: [user('wi-1')],
    input: async (dir) => ({
      source: { type: 'xlsx', path: await file(dir, 'wi-1.csv', `${HEADER}\n${upsertRow('wi-1')}\n`) },
    }),
    want: { fail: 'InvalidInput', messageNames: ['source.type'] },
  },
  {
    name: 'workflow input: negative batch size',
    users: [user('wi-2')],
    input: async (dir) => ({ ...csv(await file(dir, 'wi-2.csv', `${HEADER}\n${upsertRow('wi-2')}\n`)), batchSize: -5 }),
    want: { fail: 'InvalidInput', messageNames: ['batchSize'] },
  },
  {
    name: 'workflow input: missing path',
    input: async () => ({ source: { type: 'csv' } }),
    want: { fail: 'InvalidInput', messageNames: ['source.path'] },
  },
  {
    name: 'workflow input: misspelt "dryrun" (must not mean a real run)',
    users: [user('wi-3')],
    input: async (dir) => ({ ...csv(await file(dir, 'wi-3.csv', `${HEADER}\n${upsertRow('wi-3')}\n`)), dryrun: true }),
    want: { fail: 'InvalidInput', messageNames: ['dryrun'] },
  },
  {
    name: 'environment: a real run on a worker without WEBHOOK_URL',
    users: [user('env-1')],
    noWebhookWorker: true,
    input: async (dir) => csv(await file(dir, 'env-1.csv', `${HEADER}\n${upsertRow('env-1')}\n`)),
    want: { fail: 'InvalidConfig', messageNames: ['WEBHOOK_URL', 'dryRun'] },
  },

  // --- completed runs: good rows processed, bad rows skipped with their line -----------------------
  {
    name: 'environment: a dry run on that same worker is fine (decides, sends nothing)',
    users: [user('env-2'), user('env-3')],
    noWebhookWorker: true,
    input: async (dir) => ({
      ...csv(await file(dir, 'env-2.csv', `${HEADER}\n${upsertRow('env-2')}\n${unchangedRow('env-3')}\n`)),
      dryRun: true,
    }),
    want: {
      dryRun: true,
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'env-2' },
        { line: 3, outcome: 'unchanged', memberId: 'env-3' },
      ],
    },
  },
  {
    name: 'unknown extra columns are ignored',
    users: [user('xc-1'), user('xc-2')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'extra.csv',
          `name,${HEADER},plan,notes\nKim,${unchangedRow('xc-1', ['gold', 'n/a'])}\nLee,${upsertRow('xc-2', ['', ''])}\n`,
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'unchanged', memberId: 'xc-1' },
        { line: 3, outcome: 'upsert', memberId: 'xc-2' },
      ],
    },
  },
  {
    name: 'UTF-8 BOM before the header',
    users: [user('bom-1'), user('bom-2')],
    input: async (dir) =>
      csv(await file(dir, 'bom.csv', `\uFEFF${HEADER}\n${upsertRow('bom-1')}\n${unchangedRow('bom-2')}\n`)),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'bom-1' },
        { line: 3, outcome: 'unchanged', memberId: 'bom-2' },
      ],
    },
  },
  {
    name: 'CRLF line endings (also inside a quoted field), and a BOM',
    users: [user('crlf-1'), user('crlf-2'), user('crlf-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'crlf.csv',
          `\uFEFF${HEADER},name\r\n${upsertRow('crlf-1', ['a'])}\r\n${unchangedRow('crlf-2', ['"two\r\nlines"'])}\r\n${upsertRow('crlf-3', ['c'])}\r\n`,
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'crlf-1' },
        { line: 3, outcome: 'unchanged', memberId: 'crlf-2' },
        { line: 5, outcome: 'upsert', memberId: 'crlf-3' },
      ],
    },
  },
  {
    name: 'quoted fields with commas, quotes and newlines (a record spans lines)',
    users: [user('q-1'), user('q,2'), user('q-3'), user('q "4"')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'quoted.csv',
          [
            `${HEADER},name`,
            upsertRow('q-1', ['"Kim, Junho\nsecond line\nthird line"']),
            unchangedRow('q,2', ['"say ""hi"", then\nleave"']),
            upsertRow('q-3', ['plain']),
            upsertRow('q "4"', ['"x"']),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'q-1' },
        { line: 5, outcome: 'unchanged', memberId: 'q,2' },
        { line: 7, outcome: 'upsert', memberId: 'q-3' },
        { line: 8, outcome: 'upsert', memberId: 'q "4"' },
      ],
    },
  },
  {
    name: 'blank lines anywhere (not rows: no entry, but line numbers stay physical)',
    users: [user('bl-1'), user('bl-2'), user('bl-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'blank-lines.csv',
          `\n${HEADER}\n\n${upsertRow('bl-1')}\n   \n\t\n${unchangedRow('bl-2')}\n\n\n${upsertRow('bl-3')}\n\n\n`,
        ),
      ),
    want: {
      rows: [
        { line: 4, outcome: 'upsert', memberId: 'bl-1' },
        { line: 7, outcome: 'unchanged', memberId: 'bl-2' },
        { line: 10, outcome: 'upsert', memberId: 'bl-3' },
      ],
    },
  },
  {
    name: 'duplicate memberIds (the first row wins, also when it was a bad row; ids are trimmed)',
    users: [user('dup-1'), user('dup-2'), user('dup-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'dups.csv',
          [
            HEADER,
            upsertRow('dup-1'),
            unchangedRow('dup-2'),
            unchangedRow('dup-1'),
            csvRow(' dup-2 ', otherEmail('dup-2')),
            csvRow('dup-3', sameEmail('dup-3'), 'perhaps,false'),
            unchangedRow('dup-3'),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'dup-1' },
        { line: 3, outcome: 'unchanged', memberId: 'dup-2' },
        { line: 4, outcome: 'skipped', memberId: 'dup-1', reason: 'duplicate memberId (first seen on line 2)' },
        { line: 5, outcome: 'skipped', memberId: 'dup-2', reason: 'duplicate memberId (first seen on line 3)' },
        { line: 6, outcome: 'skipped', memberId: 'dup-3', reason: 'unsubscribeEmail: invalid boolean' },
        { line: 7, outcome: 'skipped', memberId: 'dup-3', reason: 'duplicate memberId (first seen on line 6)' },
      ],
    },
  },
  {
    name: 'empty memberIds (empty, blank, quoted empty)',
    users: [user('em-1')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'empty-ids.csv',
          [
            HEADER,
            `,,${otherEmail('x')},false,false`,
            upsertRow('em-1'),
            `   ,,a@example.com,true,false`,
            `"",,,,`,
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'skipped', reason: 'empty memberId' },
        { line: 3, outcome: 'upsert', memberId: 'em-1' },
        { line: 4, outcome: 'skipped', reason: 'empty memberId' },
        { line: 5, outcome: 'skipped', reason: 'empty memberId' },
      ],
    },
  },
  {
    name: 'memberIds with spaces, /, @, ?, #, %, +, .. and non-ASCII reach Channel Talk and the receiver intact',
    users: SPECIAL_IDS.map((id) => user(id)),
    input: async (dir) =>
      csv(await file(dir, 'special-ids.csv', [HEADER, ...SPECIAL_IDS.map((id) => upsertRow(id)), ''].join('\n'))),
    want: { rows: SPECIAL_IDS.map((id, i) => ({ line: i + 2, outcome: 'upsert' as const, memberId: id })) },
  },
  {
    name: 'invalid booleans (accepted spellings pass)',
    users: [user('bo-1'), user('bo-2'), user('bo-3'), user('bo-4')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'booleans.csv',
          [
            HEADER,
            csvRow('bo-1', sameEmail('bo-1'), 'maybe,false'),
            csvRow('bo-2', sameEmail('bo-2'), 'NO,0'),
            csvRow('bo-3', sameEmail('bo-3'), 'false,2'),
            csvRow('bo-4', sameEmail('bo-4'), 'Yes,TRUE'),
            csvRow('bo-5', sameEmail('bo-5'), 'y,n'),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'skipped', memberId: 'bo-1', reason: 'unsubscribeEmail: invalid boolean' },
        { line: 3, outcome: 'unchanged', memberId: 'bo-2' },
        { line: 4, outcome: 'skipped', memberId: 'bo-3', reason: 'unsubscribeTexting: invalid boolean' },
        { line: 5, outcome: 'upsert', memberId: 'bo-4', fields: ['unsubscribeEmail', 'unsubscribeTexting'] },
        {
          line: 6,
          outcome: 'skipped',
          memberId: 'bo-5',
          reason: 'unsubscribeEmail: invalid boolean; unsubscribeTexting: invalid boolean',
        },
      ],
    },
  },
  {
    name: 'a row with too few or too many fields (shifted columns)',
    users: [user('fc-1'), user('fc-4')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'field-count.csv',
          [
            HEADER,
            upsertRow('fc-1'),
            'fc-2,,x@example.com,false',
            `fc-3,,${sameEmail('fc-3')},false,false,extra`,
            unchangedRow('fc-4'),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'fc-1' },
        { line: 3, outcome: 'skipped', reason: 'has 4 fields, the header has 5' },
        { line: 4, outcome: 'skipped', reason: 'has 6 fields, the header has 5' },
        { line: 5, outcome: 'unchanged', memberId: 'fc-4' },
      ],
    },
  },
  {
    name: 'malformed quoting in one row (the rows after it are read normally)',
    users: [user('mq-1'), user('mq-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'bad-quote.csv',
          [HEADER, upsertRow('mq-1'), 'mq-2,,ab"c@example.com,false,false', unchangedRow('mq-3'), ''].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'mq-1' },
        { line: 3, outcome: 'skipped', reason: 'malformed CSV' },
        { line: 4, outcome: 'unchanged', memberId: 'mq-3' },
      ],
    },
  },
  {
    name: 'a 1 MB CSV line',
    users: [user('big-1'), user('big-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'big.csv',
          [
            `${HEADER},notes`,
            upsertRow('big-1', ['short']),
            unchangedRow('big-2', ['x'.repeat(ONE_MB)]),
            unchangedRow('big-3', ['short']),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'big-1' },
        { line: 3, outcome: 'skipped', reason: 'record larger than 64 KiB' },
        { line: 4, outcome: 'unchanged', memberId: 'big-3' },
      ],
    },
  },
  {
    name: 'a 1 MB quoted CSV field spanning lines',
    users: [user('bigq-1'), user('bigq-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'big-quoted.csv',
          [
            `${HEADER},notes`,
            upsertRow('bigq-1', ['a']),
            unchangedRow('bigq-2', [`"${'y'.repeat(ONE_MB / 2)}\n${'z'.repeat(ONE_MB / 2)}"`]),
            upsertRow('bigq-3', ['b']),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'bigq-1' },
        { line: 3, outcome: 'skipped', reason: 'record larger than 64 KiB' },
        { line: 5, outcome: 'upsert', memberId: 'bigq-3' },
      ],
    },
  },
  {
    name: 'a 1 MB JSONL line',
    users: [user('bigj-1'), user('bigj-3')],
    input: async (dir) =>
      jsonl(
        await file(
          dir,
          'big.jsonl',
          [
            jsonlRow('bigj-1', otherEmail('bigj-1')),
            jsonlRow('bigj-2', sameEmail('bigj-2'), { notes: 'x'.repeat(ONE_MB) }),
            jsonlRow('bigj-3', sameEmail('bigj-3')),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 1, outcome: 'upsert', memberId: 'bigj-1' },
        { line: 2, outcome: 'skipped', reason: 'record larger than 64 KiB' },
        { line: 3, outcome: 'unchanged', memberId: 'bigj-3' },
      ],
    },
  },
  {
    name: 'invalid UTF-8 in a CSV row',
    users: [user('u8-1'), user('u8-3')],
    input: async (dir) =>
      csv(
        await file(
          dir,
          'invalid-utf8.csv',
          Buffer.concat([
            Buffer.from(`${HEADER}\n${upsertRow('u8-1')}\nu8-2,,`),
            Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
            Buffer.from(`@example.com,false,false\n${unchangedRow('u8-3')}\n`),
          ]),
        ),
      ),
    want: {
      rows: [
        { line: 2, outcome: 'upsert', memberId: 'u8-1' },
        { line: 3, outcome: 'skipped', reason: 'invalid UTF-8' },
        { line: 4, outcome: 'unchanged', memberId: 'u8-3' },
      ],
    },
  },
  {
    name: 'invalid UTF-8 in a JSONL line',
    users: [user('u8j-1')],
    input: async (dir) =>
      jsonl(
        await file(
          dir,
          'invalid-utf8.jsonl',
          Buffer.concat([
            Buffer.from(`${jsonlRow('u8j-1', otherEmail('u8j-1'))}\n{"memberId":"u8j-2","email":"`),
            Buffer.from([0xed, 0xa0, 0x80]),
            Buffer.from('"}\n'),
          ]),
        ),
      ),
    want: {
      rows: [
        { line: 1, outcome: 'upsert', memberId: 'u8j-1' },
        { line: 2, outcome: 'skipped', reason: 'invalid UTF-8' },
      ],
    },
  },
  {
    name: 'broken JSONL lines (truncated JSON, not an object), blank lines, unknown keys, numeric id',
    users: [user('jl-1'), user('jl-4'), user('9000001'), user('jl-6')],
    input: async (dir) =>
      jsonl(
        await file(
          dir,
          'broken.jsonl',
          [
            jsonlRow('jl-1', otherEmail('jl-1'), { plan: 'gold' }),
            '{"memberId":"jl-2","email":"a@exam',
            '',
            '["jl-3"]',
            jsonlRow('jl-4', sameEmail('jl-4')),
            '"jl-5"',
            jsonlRow(9000001, otherEmail('9000001')),
            JSON.stringify({ memberId: 'jl-6', email: sameEmail('jl-6'), unsubscribeEmail: 'sometimes' }),
            jsonlRow('jl-7', 'x@example.com', { mobileNumber: 1012345678 }),
            '',
          ].join('\n'),
        ),
      ),
    want: {
      rows: [
        { line: 1, outcome: 'upsert', memberId: 'jl-1' },
        { line: 2, outcome: 'skipped', reason: 'not valid JSON' },
        { line: 4, outcome: 'skipped', reason: 'not a JSON object' },
        { line: 5, outcome: 'unchanged', memberId: 'jl-4' },
        { line: 6, outcome: 'skipped', reason: 'not a JSON object' },
        { line: 7, outcome: 'upsert', memberId: '9000001' },
        { line: 8, outcome: 'skipped', memberId: 'jl-6', reason: 'unsubscribeEmail: invalid boolean' },
        { line: 9, outcome: 'skipped', memberId: 'jl-7', reason: 'mobileNumber: expected a string' },
      ],
    },
  },
];

// ---------------------------------------------------------------------------------------------------
// Running a case

let server: DevServer;
let stack: Stack;
let noWebhook: { worker: BackfillWorker; taskQueue: string };
let sourceDir: string;

beforeAll(async () => {
  server = await startTestServer();
  const users = CASES.flatMap((c) => c.users ?? []);
  expect(new Set(users.map((u) => u.memberId)).size, 'memberIds are unique across cases').toBe(users.length);
  stack = await startStack({ server, users });
  const taskQueue = `${stack.config.BACKFILL_TASK_QUEUE}-no-webhook`;
  const worker = await createBackfillWorker(
    loadConfig({ ...stack.env, WEBHOOK_URL: '', BACKFILL_TASK_QUEUE: taskQueue }),
    { workflowBundle: await workflowBundle() },
  );
  void worker.run();
  noWebhook = { worker, taskQueue };
  sourceDir = await mkdtemp(path.join(os.tmpdir(), 'bad-input-sources-'));
});

afterAll(async () => {
  await noWebhook?.worker.close();
  await stack?.close();
  await server?.stop();
  if (sourceDir) await rm(sourceDir, { recursive: true, force: true });
});

/** Every file (not directory) under `dir`, relative; [] when `dir` does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries.filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** The result, or the failure, within CASE_TIMEOUT_MS; a run still going then is terminated and reported. */
async function outcomeOf(handle: WorkflowHandle): Promise<{ result?: BackfillResult; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CASE_TIMEOUT_MS);
  });
  try {
    const settled = await Promise.race([
      handle.result().then(
        (result) => ({ result: result as BackfillResult }),
        (error: unknown) => ({ error }),
      ),
      timeout,
    ]);
    if (settled === 'timeout') {
      await handle.terminate('bad-input test: no result within the time limit').catch(() => undefined);
      throw new Error(
        `workflow ${handle.workflowId} neither completed nor failed within ${CASE_TIMEOUT_MS} ms (crash loop?)`,
      );
    }
    return settled;
  } finally {
    clearTimeout(timer);
  }
}

/** Nothing was retried: no workflow task failed, every activity ran once. Returns the activity types run. */
async function expectNoRetries(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  const types: string[] = [];
  for (const event of events ?? []) {
    expect(event.workflowTaskFailedEventAttributes, 'a workflow task failed').toBeFalsy();
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) types.push(scheduled.activityType?.name ?? '?');
    const started = event.activityTaskStartedEventAttributes;
    if (started) expect(started.attempt, 'an activity was retried').toBe(1);
  }
  return types;
}

describe('bad input through the real backfill workflow', () => {
  it('has at least 20 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  CASES.forEach((c, i) => {
    const workflowId = `bad-input-${String(i + 1).padStart(2, '0')}`;
    it(`${workflowId}: ${c.name}`, async () => {
      const caseDir = path.join(sourceDir, workflowId);
      await mkdir(caseDir);
      const input = await c.input(caseDir);
      const before = { stats: stack.simulator.stats(), deliveries: stack.receiver.deliveries().length };
      const started = Date.now();
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: c.noWebhookWorker ? noWebhook.taskQueue : stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      const { result, error } = await outcomeOf(handle);
      const elapsed = Date.now() - started;
      const deliveries = stack.receiver.deliveries().slice(before.deliveries);
      const stats = stack.simulator.stats();
      const activities = await expectNoRetries(handle);

      if ('fail' in c.want) {
        expect(result, 'the run should have failed').toBeUndefined();
        expect(error).toBeInstanceOf(WorkflowFailedError);
        const cause = (error as WorkflowFailedError).cause;
        expect(cause).toBeInstanceOf(ApplicationFailure);
        const failure = cause as ApplicationFailure;
        expect(failure.type).toBe(c.want.fail);
        expect(failure.nonRetryable).toBe(true);
        for (const part of c.want.messageNames) expect(failure.message).toContain(part);
        if (c.want.namesFile) expect(failure.message).toContain((input as { source: { path: string } }).source.path);
        expect(failure.message).not.toMatch(/[\r\n]/);
        // Before any side effect: no lookup, no delivery, no batch, no file left on the workers' disk.
        expect(stats.requests).toBe(before.stats.requests);
        expect(deliveries).toHaveLength(0);
        expect(activities).toEqual(['prepareBackfill']);
        expect(await filesUnder(path.join(stack.dataDir, workflowId))).toEqual([]);
        return;
      }

      expect(error, 'the run should have completed').toBeUndefined();
      const rows = c.want.rows;
      const dryRun = c.want.dryRun ?? false;
      const count = (o: OutcomeKind) => rows.filter((r) => r.outcome === o).length;
      expect(result).toMatchObject({
        total: rows.length,
        processed: rows.length,
        upserts: count('upsert'),
        unchanged: count('unchanged'),
        skipped: count('skipped'),
        deletes: 0,
        failed: 0,
        dryRun,
      });

      // Exactly one audit entry per non-blank source row, at the row's physical line.
      const audit = await readAudit(result!.auditPath);
      expect(audit.map((e) => e.line).sort((a, b) => a - b)).toEqual(rows.map((r) => r.line));
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const want of rows) {
        const got = byLine.get(want.line)!;
        expect(got.outcome, `line ${want.line}`).toBe(want.outcome);
        expect(got.memberId, `memberId on line ${want.line}`).toBe(want.memberId);
        if (want.outcome === 'skipped') expect(got.reason, `reason on line ${want.line}`).toContain(want.reason);
        expect(got.dryRun).toBe(dryRun);
        expect(got.backfill).toBe(workflowId);
      }

      // Each good row was looked up exactly once, under its exact memberId (so it was URL-encoded
      // correctly); a skipped row was never looked up.
      const lookups = (id: string) => (stats.byMember.get(id) ?? 0) - (before.stats.byMember.get(id) ?? 0);
      for (const want of rows) {
        if (want.outcome !== 'skipped')
          expect(lookups(want.memberId), `lookups of ${JSON.stringify(want.memberId)}`).toBe(1);
      }
      const goodIds = new Set(rows.flatMap((r) => (r.outcome === 'skipped' ? [] : [r.memberId])));
      expect(stats.requests - before.stats.requests).toBe(goodIds.size);

      // Deliveries: one per upsert, with the exact memberId and the run's webhook-id; nothing else.
      const upserts = rows.filter((r) => r.outcome === 'upsert');
      for (const r of upserts)
        expect(byLine.get(r.line)!.fields, `fields on line ${r.line}`).toEqual(r.fields ?? ['email']);
      if (dryRun) {
        expect(deliveries).toHaveLength(0);
      } else {
        expect(deliveries.map((d) => d.memberId).sort()).toEqual(upserts.map((r) => r.memberId).sort());
        for (const d of deliveries) {
          expect(d.status).toBe(200);
          expect(d.event).toBe('upsert');
          expect(d.webhookId).toBe(webhookId(workflowId, d.memberId!, 'upsert'));
        }
        for (const r of upserts)
          expect(byLine.get(r.line)).toMatchObject({
            delivered: true,
            event: 'upsert',
            webhookId: webhookId(workflowId, r.memberId, 'upsert'),
          });
      }
      // Prepare, the batches, and the completed run's clean-up of its work data; nothing deferred or retried.
      expect(activities[0]).toBe('prepareBackfill');
      expect(activities.at(-1)).toBe('cleanupBackfill');
      expect(activities.slice(1, -1).length).toBeGreaterThan(0);
      expect(
        activities.slice(1, -1).every((a) => a === 'processBatch'),
        activities.join(','),
      ).toBe(true);
      expect(elapsed).toBeLessThan(CASE_TIMEOUT_MS);
    });
  });
});
