// A source read slower than the batches (a remote table), through the real worker on both work stores: a PostgreSQL
// query source that sleeps per row, the simulator and the receiver. A run due to continue as new while its source is
// still read holds past twice maxHistoryEvents (patch history-hold-while-normalising-v1) until the normaliser ends,
// then continues as new: its history stays bounded, the counts exact, every bad row recorded once, each member
// delivered once, one normaliser for the whole chain. (Continuing as new mid-read instead, the next run's normaliser
// resuming the write, took 29-32 s here against the hold's 14-16 s: each resume reads the source again from its start
// up to the rows it keeps, and a slow source pays that in full: commit c1fd6e2 has that design, 97f50d2 why not.)
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { syntheticCounts, syntheticMembers, syntheticUsers, SYNTHETIC_CSV_COLUMNS } from '../../dev/synthetic';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import { syntheticSuite } from '../support/synthetic-suite';
import { readAudit, startStack } from '../support/stack';

const MEMBERS = 4_000;
/** Each row the source gives takes this long (pg_sleep per row): about 8 s for the whole table, once. */
const ROW_SLEEP_SECONDS = 0.002;
// Bad rows: one read by the first run, one in the middle, one at the end (memberId order), and a repeated memberId.
const BAD_ROWS = [
  ['a-bad-first', '+821012345678', 'first@example.com', 'maybe', 'false'],
  ['syn-0002000-bad', '+821012345679', 'middle@example.com', 'true', 'perhaps'],
  ['zz-bad-last', '+821012345670', 'last@example.com', 'sometimes', 'false'],
];

const suite = syntheticSuite({ members: MEMBERS, prefix: 'slow-source-', postgres: true });

/** The members table (the synthetic CSV, text columns, three bad rows and a repeated memberId) and its slow query. */
async function slowSource(database: string): Promise<{ url: string; query: string; repeated: string }> {
  const url = await suite.pg.createDatabase(database);
  const sql = (text: string, values: unknown[] = []) => suite.pg.query(text, values, database);
  const columns = SYNTHETIC_CSV_COLUMNS.map((c) => `"${c}"`);
  await sql(`CREATE TABLE members (${columns.map((c) => `${c} text`).join(', ')})`);
  // The synthetic members' cells as the CSV holds them (an empty cell NULL, as COPY reads a CSV), in one statement.
  const cells = SYNTHETIC_CSV_COLUMNS.map(() => [] as (string | null)[]);
  for (const m of syntheticMembers(MEMBERS))
    SYNTHETIC_CSV_COLUMNS.forEach((c, i) => cells[i]!.push(m.cells[c] === '' ? null : m.cells[c]));
  await sql(
    `INSERT INTO members SELECT * FROM unnest(${columns.map((_, i) => `$${i + 1}::text[]`).join(', ')})`,
    cells,
  );
  for (const row of BAD_ROWS) await sql('INSERT INTO members VALUES ($1, $2, $3, $4, $5, NULL)', row);
  // A second row for a member of the middle: the first in the read order wins, this one is skipped.
  const [{ memberId: repeated }] = (await sql(
    `SELECT "memberId" FROM members WHERE "memberId" LIKE 'syn-%' ORDER BY "memberId" OFFSET ${MEMBERS / 2} LIMIT 1`,
  )) as [{ memberId: string }];
  await sql(
    `INSERT INTO members SELECT "memberId", "mobileNumber", 'zz@example.com', "unsubscribeEmail",
    "unsubscribeTexting", NULL FROM members WHERE "memberId" = $1`,
    [repeated],
  );
  // The read order's index, so the cursor streams (and sleeps) row by row instead of sorting the whole table first.
  await sql(`CREATE INDEX members_read_order ON members (${columns.slice(0, 5).join(', ')})`);
  await sql(`CREATE FUNCTION slow_row() RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(${ROW_SLEEP_SECONDS}); RETURN true; END $$`);
  const query = `SELECT ${columns.slice(0, 5).join(', ')} FROM members WHERE slow_row()`;
  return { url, query, repeated };
}

interface RunSeen {
  events: number;
  normalisers: number;
  /** How the run's normaliser attempts ended: completed, canceled, or still open when the run closed. */
  normaliserEnds: string[];
  continuedAsNew: boolean;
}

/** Each run of the chain, from its first, as its history shows it. */
async function runsOf(client: Client, workflowId: string, firstRunId: string): Promise<RunSeen[]> {
  const runs: RunSeen[] = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events: temporal.api.history.v1.IHistoryEvent[] = history.events ?? [];
    const normalisers = events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'normaliseSource')
      .map((e) => String(e.eventId));
    const endOf = (id: string) => {
      const end = events.find(
        (e) =>
          String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === id ||
          String(e.activityTaskCanceledEventAttributes?.scheduledEventId ?? '') === id,
      );
      if (!end) return 'open';
      return end.activityTaskCompletedEventAttributes ? 'completed' : 'canceled';
    };
    const last = events.at(-1);
    const next = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    runs.push({
      events: events.length,
      normalisers: normalisers.length,
      normaliserEnds: normalisers.map(endOf),
      continuedAsNew: next !== undefined,
    });
    runId = next;
  }
  return runs;
}

describe('a source read slower than the batches: the history stays bounded while it is read, the run exact', () => {
  it.each(['file', 'postgres'] as const)(
    'BACKFILL_STORE=%s: exact, every bad row once, each member delivered once, the history bounded',
    async (store) => {
      const database = `slow_${store}`;
      const { url, query, repeated } = await slowSource(database);
      const stack = await startStack({
        server: suite.server,
        users: syntheticUsers(MEMBERS),
        simulatorRateLimit: 2_000,
        env: {
          BACKFILL_DATABASE_URL: url,
          CHANNEL_RATE_LIMIT: '2000',
          ...(store === 'postgres' ? { BACKFILL_STORE: 'postgres' } : {}),
        },
      });
      try {
        // The smallest history threshold: a run is due to continue as new after about 30 batches of 50.
        const input: BackfillInput = { source: { type: 'postgres', query }, batchSize: 50, maxHistoryEvents: 200 };
        const workflowId = `slow-source-${store}`;
        const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
          taskQueue: stack.config.BACKFILL_TASK_QUEUE,
          workflowId,
          args: [input],
        });
        const started = Date.now();
        const result = (await handle.result()) as BackfillResult;
        const seconds = (Date.now() - started) / 1000;
        const runs = await runsOf(stack.client, workflowId, handle.firstExecutionRunId);

        const want = syntheticCounts(MEMBERS);
        expect(result).toMatchObject({
          total: MEMBERS + BAD_ROWS.length + 1,
          processed: MEMBERS + BAD_ROWS.length + 1,
          upserts: want.upserts,
          deletes: want.deletes,
          unchanged: want.unchanged,
          failed: 0,
          skipped: BAD_ROWS.length + 1,
        });
        // One audit entry per row: each member's and each bad row's outcome recorded once.
        const audited =
          store === 'file'
            ? (await readAudit(result.auditPath)).map((e) => e.line)
            : (
                await suite.pg.query('SELECT line FROM backfill_audit WHERE key = $1', [result.auditPath], database)
              ).map((r) => r.line as number);
        expect(audited).toHaveLength(MEMBERS + BAD_ROWS.length + 1);
        expect(new Set(audited).size).toBe(audited.length);
        // Each member delivered (accepted) once at most, every upsert and delete once.
        const perMember = new Map<string, number>();
        for (const d of stack.receiver.accepted()) perMember.set(d.memberId!, (perMember.get(d.memberId!) ?? 0) + 1);
        expect(Math.max(...perMember.values())).toBe(1);
        expect(perMember.size).toBe(want.upserts + want.deletes);
        expect(stack.simulator.stats().byMember.get(repeated)).toBe(1);

        // One normaliser for the chain, read to its end by the run that started it; no other run read the source.
        const reading = runs.filter((r) => r.normalisers > 0);
        expect(reading).toHaveLength(1);
        expect(reading[0]!.normaliserEnds).toEqual(['completed']);
        expect(runs.length).toBeGreaterThan(1);
        const largest = Math.max(...runs.map((r) => r.events));
        console.log(
          `slow source (${MEMBERS + BAD_ROWS.length + 1} rows, ${ROW_SLEEP_SECONDS * 1000} ms a row, BACKFILL_STORE=${store}): ${seconds.toFixed(1)} s, ${runs.length} runs, ${reading.length} of them reading, largest history ${largest} events`,
        );
        // Held from twice the threshold (400 events) on: what is in flight then ends, and nothing new starts.
        expect(largest).toBeLessThan(400 + 100);
      } finally {
        await stack.close();
      }
    },
    300_000,
  );
});
