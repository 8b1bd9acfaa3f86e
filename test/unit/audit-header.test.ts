// The audit log's header (issue 9, item 1): which backfill and which channel a log belongs to. The header on both
// audit stores (a JSONL file, a real throwaway PostgreSQL), and prepareBackfill writing it for real: against the
// channel simulator over loopback, a real CSV source and a real work store, run as an activity.
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { prepareBackfill, type PrepareDeps } from '../../activities/prepare';
import type { AuditEntry } from '../../src/audit/audit-entry';
import {
  AUDIT_HEADER_FORMAT,
  auditHeaderLine,
  parseAuditHeaderLine,
  type AuditHeader,
} from '../../src/audit/audit-header';
import { createFileAuditStore, newReadStats, type AuditStore } from '../../src/audit/audit-store';
import { createPostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { createChannelClient, type ChannelClient } from '../../src/channel/client';
import { loadConfig } from '../../src/config';
import { renderSummary } from '../../src/report/render';
import { summarize } from '../../src/report/summary';
import { createFileWorkStore } from '../../src/store/work-store';
import type { OutcomeKind } from '../../src/domain/types';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import type { PreparedBackfill } from '../../workflows/definitions';

let dir: string;
let pg: TestPostgres;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'audit-header-'));
  pg = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const header = (over: Partial<AuditHeader> = {}): AuditHeader => ({
  format: AUDIT_HEADER_FORMAT,
  ts: '2026-12-04T00:00:00.000Z',
  backfill: 'bf-1',
  firstRunId: 'run-1',
  runLabel: 'bf-1',
  channel: { id: 'ch-77', name: 'Acme Store' },
  dryRun: true,
  source: { type: 'csv', path: '/data/members.csv' },
  target: 'url',
  ...over,
});

const entry = (line: number, outcome: OutcomeKind): AuditEntry => ({
  ts: '2026-12-04T00:00:01.000Z',
  backfill: 'bf-1',
  runLabel: 'bf-1',
  line,
  memberId: `m-${line}`,
  outcome,
  dryRun: true,
});

let logs = 0;
let tables = 0;
const newLog = () => path.join(dir, `log-${++logs}`, 'audit.jsonl');
/** Per kind: a fresh log space (for PostgreSQL a fresh table), then as many store instances on it as wanted. */
const makers: [string, () => () => AuditStore][] = [
  ['file', () => () => createFileAuditStore()],
  [
    'postgres',
    () => {
      const table = `audit_header_${++tables}`;
      return () => createPostgresAuditStore(pg.pool(), { table });
    },
  ],
];

async function read(store: AuditStore, log: string) {
  const stats = newReadStats();
  const records: AuditEntry[] = [];
  for await (const e of store.entries(log, stats)) records.push(e);
  return { records, stats };
}

describe.each(makers)('%s audit store: the header', (_kind, space) => {
  let make: () => AuditStore;
  beforeEach(() => {
    make = space();
  });

  it('is written once: the first header wins, and header() reads it back', async () => {
    const store = make();
    const log = newLog();
    expect(await store.header(log)).toBeUndefined();
    expect(await store.writeHeader(log, header())).toEqual(header());
    // A retried preparation, a later run reusing the log: the first header stays.
    const later = header({ backfill: 'bf-2', ts: '2026-12-05T00:00:00.000Z', channel: { id: 'ch-9', name: null } });
    expect(await store.writeHeader(log, later)).toEqual(header());
    expect(await store.header(log)).toEqual(header());
    expect(await make().header(log)).toEqual(header()); // another worker's store sees it too
  });

  it('two writers at once: one header wins, both are told which', async () => {
    const store = make();
    const log = newLog();
    const written = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.writeHeader(log, header({ backfill: `bf-${i}` }))),
    );
    expect(new Set(written.map((h) => h?.backfill)).size).toBe(1);
    expect(await store.header(log)).toEqual(written[0]);
  });

  it('entries(), lookup() and the read stats take it for the header: neither a record nor unreadable', async () => {
    const store = make();
    const log = newLog();
    await store.writeHeader(log, header());
    await store.append(log, [entry(2, 'upsert'), entry(3, 'delete')]);
    const { records, stats } = await read(store, log);
    expect(records.map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'delete'],
    ]);
    expect(stats).toEqual({ entries: 2, repeated: 0, unreadable: 0, header: header() });
    expect([...(await store.lookup(log, [0, 1, 2, 3, 4])).keys()].sort()).toEqual([2, 3]);
    expect([...(await make().lookup(log, [0, 1, 2, 3, 4])).keys()].sort()).toEqual([2, 3]);
  });

  it('a log with a header and no record yet reads as an empty log', async () => {
    const store = make();
    const log = newLog();
    await store.writeHeader(log, header());
    expect(await read(store, log)).toEqual({
      records: [],
      stats: { entries: 0, repeated: 0, unreadable: 0, header: header() },
    });
  });

  it('a log written before headers (records, no header) gets none and reads as before', async () => {
    const store = make();
    const log = newLog();
    await store.append(log, [entry(2, 'upsert'), entry(3, 'unchanged')]);
    const before = await read(store, log);
    expect(before.stats).toEqual({ entries: 2, repeated: 0, unreadable: 0 });
    expect(await store.writeHeader(log, header())).toBeUndefined();
    expect(await store.header(log)).toBeUndefined();
    expect(await read(store, log)).toEqual(before);
  });
});

describe('file audit store: the header line', () => {
  it('is the first line, {"header":{...}}, in a fixed key order', async () => {
    const store = createFileAuditStore();
    const log = newLog();
    await store.writeHeader(log, header());
    await store.append(log, [entry(2, 'upsert')]);
    const lines = (await readFile(log, 'utf8')).split('\n');
    expect(lines[0]).toBe(
      '{"header":{"format":1,"ts":"2026-12-04T00:00:00.000Z","backfill":"bf-1","firstRunId":"run-1","runLabel":"bf-1",' +
        '"channel":{"id":"ch-77","name":"Acme Store"},"dryRun":true,"source":{"type":"csv","path":"/data/members.csv"},"target":"url"}}',
    );
    expect(lines[0]).toBe(auditHeaderLine(header()));
    expect(JSON.parse(lines[1]!)).toMatchObject({ line: 2, outcome: 'upsert' });
    expect(lines).toHaveLength(3); // header, record, the final line feed
  });

  it('leaves a pre-header log byte for byte as it was', async () => {
    const log = newLog();
    const store = createFileAuditStore();
    await store.append(log, [entry(2, 'upsert')]);
    await appendFile(log, '{"line":3,"outcome":"unch'); // and a torn last line
    const bytes = await readFile(log);
    expect(await store.writeHeader(log, header())).toBeUndefined();
    expect(await readFile(log)).toEqual(bytes);
  });

  it('only the first line is the header: a header-shaped line elsewhere is unreadable, a broken one too', async () => {
    const log = newLog();
    const store = createFileAuditStore();
    await store.writeHeader(log, header());
    await store.append(log, [entry(2, 'upsert')]);
    await appendFile(log, `${auditHeaderLine(header({ backfill: 'intruder' }))}\n`);
    const { records, stats } = await read(store, log);
    expect(records).toHaveLength(1);
    expect(stats).toEqual({ entries: 1, repeated: 0, unreadable: 1, header: header() });

    const broken = newLog();
    await mkdir(path.dirname(broken), { recursive: true });
    await writeFile(broken, `{"header":{"backfill":"no channel"}}\n${JSON.stringify(entry(2, 'upsert'))}\n`);
    expect(await store.header(broken)).toBeUndefined();
    expect((await read(store, broken)).stats).toEqual({ entries: 1, repeated: 0, unreadable: 1 });
  });

  it.each([
    ['a record', JSON.stringify(entry(2, 'upsert'))],
    ['a header beside other keys', '{"header":{},"line":2,"outcome":"upsert"}'],
    ['not JSON', '{"header":'],
  ])('parseAuditHeaderLine(%s) is no header', (_name, text) => {
    expect(parseAuditHeaderLine(text)).toBeUndefined();
  });
});

describe('postgres audit store: the header table', () => {
  it('is created beside the audit table, keyed like it, with the header as jsonb', async () => {
    const store = createPostgresAuditStore(pg.pool(), { table: 'audit_columns' });
    await store.ready();
    expect(store.headerTable).toBe('"audit_columns_header"');
    const columns = await pg.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'audit_columns_header' ORDER BY ordinal_position`,
    );
    expect(columns.map((c) => [c.column_name, c.data_type])).toEqual([
      ['key', 'text'],
      ['channel_id', 'text'],
      ['header', 'jsonb'],
      ['recorded_at', 'timestamp with time zone'],
    ]);
    await store.writeHeader('/data/x/audit.jsonl', header());
    expect(
      await pg.query('SELECT key, channel_id FROM audit_columns_header WHERE key = $1', ['/data/x/audit.jsonl']),
    ).toEqual([{ key: '/data/x/audit.jsonl', channel_id: 'ch-77' }]);
  });

  it('an install whose header table is missing still reads its logs (no header), and reading creates nothing', async () => {
    const writer = createPostgresAuditStore(pg.pool(), { table: 'audit_old_install' });
    await writer.append('old-log', [entry(2, 'upsert')]);
    await pg.query('DROP TABLE audit_old_install_header');
    const reader = createPostgresAuditStore(pg.pool(), { table: 'audit_old_install' });
    expect(await reader.header('old-log')).toBeUndefined();
    expect((await read(reader, 'old-log')).stats).toEqual({ entries: 1, repeated: 0, unreadable: 0 });
    expect(await pg.query(`SELECT to_regclass('audit_old_install_header') IS NULL AS absent`)).toEqual([
      { absent: true },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------
// prepareBackfill writes the header

const KEY = 'k-audit-header-access-key';
const SECRET = 's-audit-header-access-secret';
const EMAIL = 'private.person@example.com';
const PHONE = '+821012345678';
let channelA: ChannelSimulator;
let channelB: ChannelSimulator;
const clients: ChannelClient[] = [];
beforeAll(async () => {
  [channelA, channelB] = await Promise.all([
    startChannelSimulator({ users: [], accessKey: KEY, accessSecret: SECRET, channel: { id: 'ch-77', name: 'Acme' } }),
    startChannelSimulator({ users: [], accessKey: KEY, accessSecret: SECRET, channel: { id: 'ch-88', name: null } }),
  ]);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([channelA?.close(), channelB?.close()]);
});

function deps(audit: AuditStore, sim: ChannelSimulator): PrepareDeps {
  const channel = createChannelClient({ baseUrl: sim.url, accessKey: KEY, accessSecret: SECRET });
  clients.push(channel);
  return {
    config: loadConfig({ CHANNEL_ACCESS_KEY: KEY, CHANNEL_ACCESS_SECRET: SECRET, BACKFILL_DATA_DIR: dir }),
    hasTarget: () => true,
    audit,
    channel,
    work: createFileWorkStore(),
  };
}

const prepare = (
  d: PrepareDeps,
  input: Record<string, unknown>,
  workflowId = 'bf-prep',
  firstRunId = 'run-a',
): Promise<PreparedBackfill> =>
  new MockActivityEnvironment().run(prepareBackfill, d, { input, workflowId, firstRunId }) as Promise<PreparedBackfill>;

async function failureOf(promise: Promise<unknown>): Promise<Error & { type?: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error & { type?: string };
}

describe.each(makers)('prepareBackfill on the %s audit store', (kind, space) => {
  let csv: string;
  let make: () => AuditStore;
  beforeEach(() => {
    make = space();
  });
  beforeAll(async () => {
    csv = path.join(dir, `members-${kind}.csv`);
    await writeFile(
      csv,
      `memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting\nm-1,${PHONE},${EMAIL},false,false\n`,
    );
  });

  it('a dry run writes the header naming the channel; it holds no personal data and no secret', async () => {
    const audit = make();
    const prepared = await prepare(deps(audit, channelA), { source: { type: 'csv', path: csv }, dryRun: true });
    const written = await audit.header(prepared.paths.auditPath);
    expect(written).toMatchObject({
      format: 1,
      backfill: 'bf-prep',
      firstRunId: 'run-a',
      runLabel: 'bf-prep',
      channel: { id: 'ch-77', name: 'Acme' },
      dryRun: true,
      source: { type: 'csv', path: csv },
      target: 'url',
    });
    expect(Date.parse(written!.ts)).toBeGreaterThan(Date.now() - 60_000);
    const text = JSON.stringify(written);
    for (const secret of [EMAIL, PHONE, KEY, SECRET, 'private.person']) expect(text).not.toContain(secret);
    if (kind === 'file') {
      const first = (await readFile(prepared.paths.auditPath, 'utf8')).split('\n')[0]!;
      expect(parseAuditHeaderLine(first)).toEqual(written);
    }
  });

  it.each([
    [
      { type: 'url' },
      /^WEBHOOK_URL is not set on worker 42@host-b: set it on every worker, or start the backfill with "dryRun": true$/,
    ],
    [{ type: 'channel-webhooks' }, /^worker 42@host-b cannot replay to the channel's registered webhooks$/],
  ])(
    'a real run on a worker that cannot replay to %j fails at once, naming the worker, and writes nothing',
    async (target, message) => {
      const audit = make();
      const d = { ...deps(audit, channelA), hasTarget: () => false, workerIdentity: '42@host-b' };
      const auditPath = path.join(dir, `no-target-${kind}-${target.type}`, 'audit.jsonl');
      const err = await failureOf(prepare(d, { source: { type: 'csv', path: csv }, target, auditPath }));
      expect(err.message).toMatch(message);
      expect(err.type).toBe('InvalidConfig');
      expect(await audit.header(auditPath)).toBeUndefined();
    },
  );

  it('a retried preparation keeps the first header; another channel reusing the log is refused before any lookup', async () => {
    const audit = make();
    const auditPath = path.join(dir, `shared-${kind}`, 'audit.jsonl');
    const input = { source: { type: 'csv', path: csv }, dryRun: true, auditPath };
    await prepare(deps(audit, channelA), input);
    const first = await audit.header(auditPath);
    await new Promise((r) => setTimeout(r, 5));
    await prepare(deps(audit, channelA), input); // the activity retried
    await prepare(deps(audit, channelA), { ...input, dryRun: false }, 'bf-later', 'run-b'); // a later run, same channel
    expect(await audit.header(auditPath)).toEqual(first);

    const before = channelB.stats();
    const err = await failureOf(prepare(deps(audit, channelB), { ...input, dryRun: false }, 'bf-other', 'run-c'));
    expect(err.message).toBe(
      `wrong channel: the audit log ${auditPath} was begun by backfill bf-prep for channel "Acme" (id ch-77), but the worker's credentials open channel ch-88: give this run another auditPath`,
    );
    expect(err.type).toBe('WrongChannel');
    expect(channelB.stats().requests).toBe(before.requests); // no lookup
    expect(channelB.stats().channelInfo).toBe(before.channelInfo + 1); // only the channel check
    expect(await audit.header(auditPath)).toEqual(first);
  });

  it.each([
    [{}, 0],
    [{ clockSkewMs: 1500 }, 1500],
  ])("a verify run's header names the log of the repair it re-checks and its clock skew (%j)", async (skew, ms) => {
    const audit = make();
    const repair = await prepare(deps(audit, channelA), { source: { type: 'csv', path: csv }, dryRun: true }, 'bf-r');
    const verify = await prepare(
      deps(audit, channelA),
      { source: { type: 'csv', path: csv }, verifyAfter: { auditPath: repair.paths.auditPath, ...skew } },
      `bf-v-${ms}`,
    );
    const header = await audit.header(verify.paths.auditPath);
    expect(header).toMatchObject({
      backfill: `bf-v-${ms}`,
      dryRun: true,
      verifyAfter: { auditPath: repair.paths.auditPath, clockSkewMs: ms },
    });
    expect((await audit.header(repair.paths.auditPath))?.verifyAfter).toBeUndefined();
  });

  it('a verify header written before the clock skew was recorded still reads', () => {
    const line = JSON.stringify({
      header: header({ verifyAfter: { auditPath: '/data/repair/audit.jsonl' } }),
    });
    expect(parseAuditHeaderLine(line)?.verifyAfter).toEqual({ auditPath: '/data/repair/audit.jsonl' });
  });

  it.each([
    ['a retry of its failed members', (auditPath: string) => ({ only: { auditPath, outcomes: ['failed'] } })],
    ['a verify of its repair', (auditPath: string) => ({ verifyAfter: { auditPath } })],
  ])("another channel's log is refused for %s too", async (_what, select) => {
    const audit = make();
    const earlier = await prepare(deps(audit, channelA), { source: { type: 'csv', path: csv }, dryRun: true }, 'bf-a');
    const err = await failureOf(
      prepare(
        deps(audit, channelB),
        { source: { type: 'csv', path: csv }, ...select(earlier.paths.auditPath) },
        'bf-b',
      ),
    );
    expect(err.message).toMatch(
      /^wrong channel: the audit log .* was begun by backfill bf-a for channel "Acme" \(id ch-77\), but the worker's credentials open channel ch-88: members of one channel cannot be selected for another$/,
    );
  });
});

describe('the report prints the channel from the header', () => {
  it('a line naming the channel when the log has a header; nothing new without one', () => {
    const s = summarize([entry(2, 'upsert')]);
    const plain = renderSummary(s, { source: 'audit.jsonl' });
    const withHeader = renderSummary(s, { source: 'audit.jsonl', header: header() });
    expect(withHeader.split('\n')[1]).toBe(
      'Channel Talk channel "Acme Store" (id ch-77), from the log\'s header (written 2026-12-04T00:00:00.000Z by backfill bf-1)',
    );
    expect(
      withHeader
        .split('\n')
        .filter((l) => !l.startsWith('Channel Talk'))
        .join('\n'),
    ).toBe(plain);
    expect(plain).not.toContain("from the log's header");
  });
});
