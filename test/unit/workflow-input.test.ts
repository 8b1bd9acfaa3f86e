import { describe, expect, it } from 'vitest';
import { backfillInputSchema, InvalidInputError, parseBackfillInput } from '../../src/workflow-input';
import type { BackfillOptions } from '../../workflows/definitions';

// The workflow's one JSON argument, as users type it into `temporal workflow start --input`. It is
// checked once, by the first activity; a typo must stop the run, never change what the run does.

const WORKFLOW_ID = 'backfill-2024-11';
const SOURCE = { type: 'csv', path: '/data/members.csv' } as const;

function rejection(raw: unknown): InvalidInputError {
  try {
    parseBackfillInput(raw, WORKFLOW_ID);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as InvalidInputError;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('parseBackfillInput: defaults', () => {
  it('only the source is required; every option gets its documented default', () => {
    const { options, auditPath } = parseBackfillInput({ source: SOURCE }, WORKFLOW_ID);
    expect(options).toEqual<BackfillOptions>({
      source: { type: 'csv', path: '/data/members.csv' },
      dryRun: false,
      batchSize: 1000,
      runLabel: WORKFLOW_ID,
      parallelBatches: 4,
      rateLimit: null,
      maxHistoryEvents: 5000,
      replayMaxAttempts: 10,
      batchHeartbeatSeconds: 20,
      target: { type: 'url' },
      only: null,
      fromPlan: null,
      maxDeleteShare: 0.5,
      deleteGuardMinDecisions: 100,
      onlyChangedSince: null,
    });
    expect(auditPath).toBeUndefined();
  });

  it('runLabel defaults to the workflow id, so webhook-ids are named by the run unless told otherwise', () => {
    expect(parseBackfillInput({ source: SOURCE }, 'wf-a').options.runLabel).toBe('wf-a');
    expect(parseBackfillInput({ source: SOURCE }, 'wf-b').options.runLabel).toBe('wf-b');
    expect(parseBackfillInput({ source: SOURCE, runLabel: 'nov-outage' }, 'wf-b').options.runLabel).toBe('nov-outage');
  });

  it('every option that is given is kept as given', () => {
    const raw = {
      source: { type: 'jsonl', path: 'relative/members.jsonl' },
      dryRun: true,
      batchSize: 1000,
      runLabel: 'rerun-of-nov',
      parallelBatches: 32,
      rateLimit: 2.5,
      maxHistoryEvents: 200,
      replayMaxAttempts: 1,
      batchHeartbeatSeconds: 600,
      auditPath: '/audit/nov.jsonl',
      target: { type: 'channel-webhooks' },
      only: { auditPath: '/audit/oct.jsonl', outcomes: ['failed'] },
    };
    const { options, auditPath } = parseBackfillInput(raw, WORKFLOW_ID);
    const { auditPath: _, ...rest } = raw;
    expect(options).toEqual({
      ...rest,
      fromPlan: null,
      maxDeleteShare: 0.5,
      deleteGuardMinDecisions: 100,
      onlyChangedSince: null,
    });
    expect(auditPath).toBe('/audit/nov.jsonl');
  });

  it('the issue 9 keys: expectChannelId apart from the options, the guard thresholds and onlyChangedSince in them', () => {
    const parsed = parseBackfillInput(
      {
        source: SOURCE,
        expectChannelId: 'ch-9',
        maxDeleteShare: 1,
        deleteGuardMinDecisions: 1,
        onlyChangedSince: '2024-11-01T00:40:00+09:00',
      },
      WORKFLOW_ID,
    );
    expect(parsed.expectChannelId).toBe('ch-9');
    expect(parsed.options).toMatchObject({
      maxDeleteShare: 1,
      deleteGuardMinDecisions: 1,
      onlyChangedSince: '2024-11-01T00:40:00+09:00',
    });
    expect(parsed.options).not.toHaveProperty('expectChannelId');
  });

  it.each<[string, unknown, RegExp]>([
    ['maxDeleteShare', 0, /maxDeleteShare: must be > 0/],
    ['maxDeleteShare', 1.01, /maxDeleteShare: must be <= 1/],
    ['deleteGuardMinDecisions', 0, /deleteGuardMinDecisions:/],
    ['deleteGuardMinDecisions', 2.5, /deleteGuardMinDecisions:/],
    ['onlyChangedSince', '2024-11-01T00:40:00', /onlyChangedSince: must be an ISO time with a zone/],
    ['onlyChangedSince', 'yesterday', /onlyChangedSince: must be an ISO time with a zone/],
    ['expectChannelId', '', /expectChannelId: must not be empty/],
  ])('%s=%j is refused', (key, value, message) => {
    expect(rejection({ source: SOURCE, [key]: value }).message).toMatch(message);
  });

  it.each([
    ['batchSize', 1],
    ['batchSize', 1000],
    ['parallelBatches', 1],
    ['maxHistoryEvents', 9000],
    ['replayMaxAttempts', 1000],
    ['batchHeartbeatSeconds', 2],
    ['batchMaxBackoffSeconds', 1],
    ['batchMaxBackoffSeconds', 3600],
    ['replayAttemptTimeoutSeconds', 10],
    ['replayAttemptTimeoutSeconds', 3600],
    ['replayMaxBackoffSeconds', 1],
    ['replayMaxBackoffSeconds', 3600],
    ['rateLimit', 0.1],
  ])('boundary %s=%d is accepted', (field, value) => {
    expect(parseBackfillInput({ source: SOURCE, [field]: value }, WORKFLOW_ID).options).toMatchObject({
      [field]: value,
    });
  });

  it('verifyAfter is a dry run (dryRun left out or true), with clockSkewMs defaulting to 0; absent otherwise', () => {
    const verifyAfter = { auditPath: '/data/bf/audit.jsonl' };
    for (const extra of [{}, { dryRun: true }]) {
      const { options } = parseBackfillInput({ source: SOURCE, verifyAfter, ...extra }, WORKFLOW_ID);
      expect(options.dryRun).toBe(true);
      expect(options.verifyAfter).toEqual({ auditPath: '/data/bf/audit.jsonl', clockSkewMs: 0 });
    }
    const skewed = parseBackfillInput(
      { source: SOURCE, verifyAfter: { ...verifyAfter, clockSkewMs: 5000 } },
      WORKFLOW_ID,
    );
    expect(skewed.options.verifyAfter?.clockSkewMs).toBe(5000);
    expect('verifyAfter' in parseBackfillInput({ source: SOURCE }, WORKFLOW_ID).options).toBe(false);
    expect(parseBackfillInput({ source: SOURCE }, WORKFLOW_ID).options.dryRun).toBe(false);
  });

  it('does not modify the raw input', () => {
    const raw = { source: { ...SOURCE }, batchSize: 10 };
    const copy = structuredClone(raw);
    parseBackfillInput(raw, WORKFLOW_ID);
    expect(raw).toEqual(copy);
  });
});

describe('parseBackfillInput: rejected input names the field', () => {
  const CASES: [what: string, raw: unknown, fields: string[]][] = [
    ['unknown source type', { source: { type: 'xml', path: '/a' } }, ['source.type: must be "csv" or "jsonl"']],
    ['source type in capitals', { source: { type: 'CSV', path: '/a' } }, ['source.type']],
    ['source type missing', { source: { path: '/a' } }, ['source.type']],
    ['missing path', { source: { type: 'csv' } }, ['source.path: is required']],
    ['empty path', { source: { type: 'csv', path: '' } }, ['source.path: must not be empty']],
    ['path not a string', { source: { type: 'csv', path: 42 } }, ['source.path']],
    ['no source at all', {}, ['source']],
    ['source given as a bare path', { source: '/data/members.csv' }, ['source']],
    ['unknown key inside source', { source: { ...SOURCE, encoding: 'latin1' } }, ['source', 'encoding']],
    ['input is null', null, ['input']],
    ['input is an array', [{ source: SOURCE }], ['input']],
    ['input is a string', JSON.stringify({ source: SOURCE }), ['input']],
    ['negative batchSize', { source: SOURCE, batchSize: -1 }, ['batchSize']],
    ['zero batchSize', { source: SOURCE, batchSize: 0 }, ['batchSize']],
    ['huge batchSize', { source: SOURCE, batchSize: 1_000_000_000 }, ['batchSize']],
    ['batchSize just over the cap', { source: SOURCE, batchSize: 1001 }, ['batchSize']],
    ['non-integer batchSize', { source: SOURCE, batchSize: 2.5 }, ['batchSize']],
    ['batchSize as a string', { source: SOURCE, batchSize: '100' }, ['batchSize']],
    ['batchSize NaN', { source: SOURCE, batchSize: Number.NaN }, ['batchSize']],
    ['batchSize Infinity', { source: SOURCE, batchSize: Number.POSITIVE_INFINITY }, ['batchSize']],
    ['misspelt "dryrun"', { source: SOURCE, dryrun: true }, ['dryrun']],
    ['misspelt "batchsize"', { source: SOURCE, batchsize: 10 }, ['batchsize']],
    ['misspelt "run_label"', { source: SOURCE, run_label: 'x' }, ['run_label']],
    [
      '"carried" set by hand (only continue-as-new writes it, and strips it before validation)',
      { source: SOURCE, carried: {} },
      ['carried'],
    ],
    ['dryRun as a string', { source: SOURCE, dryRun: 'true' }, ['dryRun']],
    ['dryRun as a number', { source: SOURCE, dryRun: 1 }, ['dryRun']],
    ['empty runLabel', { source: SOURCE, runLabel: '' }, ['runLabel']],
    ['runLabel too long', { source: SOURCE, runLabel: 'x'.repeat(201) }, ['runLabel']],
    ['zero parallelBatches', { source: SOURCE, parallelBatches: 0 }, ['parallelBatches']],
    ['too many parallelBatches', { source: SOURCE, parallelBatches: 33 }, ['parallelBatches']],
    ['zero rateLimit', { source: SOURCE, rateLimit: 0 }, ['rateLimit']],
    ['negative rateLimit', { source: SOURCE, rateLimit: -1 }, ['rateLimit']],
    ['maxHistoryEvents below the floor', { source: SOURCE, maxHistoryEvents: 199 }, ['maxHistoryEvents']],
    ['maxHistoryEvents above Temporal-safe cap', { source: SOURCE, maxHistoryEvents: 9001 }, ['maxHistoryEvents']],
    ['replayMaxAttempts zero', { source: SOURCE, replayMaxAttempts: 0 }, ['replayMaxAttempts']],
    ['batchHeartbeatSeconds 1', { source: SOURCE, batchHeartbeatSeconds: 1 }, ['batchHeartbeatSeconds']],
    [
      'replayAttemptTimeoutSeconds 9',
      { source: SOURCE, replayAttemptTimeoutSeconds: 9 },
      ['replayAttemptTimeoutSeconds'],
    ],
    [
      'replayAttemptTimeoutSeconds 1.5',
      { source: SOURCE, replayAttemptTimeoutSeconds: 1.5 },
      ['replayAttemptTimeoutSeconds'],
    ],
    ['batchMaxBackoffSeconds 0', { source: SOURCE, batchMaxBackoffSeconds: 0 }, ['batchMaxBackoffSeconds']],
    ['batchMaxBackoffSeconds 3601', { source: SOURCE, batchMaxBackoffSeconds: 3601 }, ['batchMaxBackoffSeconds']],
    ['replayMaxBackoffSeconds 0', { source: SOURCE, replayMaxBackoffSeconds: 0 }, ['replayMaxBackoffSeconds']],
    ['replayMaxBackoffSeconds 3601', { source: SOURCE, replayMaxBackoffSeconds: 3601 }, ['replayMaxBackoffSeconds']],
    ['empty auditPath', { source: SOURCE, auditPath: '' }, ['auditPath']],
    ['unknown target type', { source: SOURCE, target: { type: 'smtp' } }, ['target']],
    ['target given as a bare URL', { source: SOURCE, target: 'https://customer.example/hook' }, ['target']],
    [
      'unknown key inside target (the URL comes from the worker, never the input)',
      { source: SOURCE, target: { type: 'url', url: 'https://x.example' } },
      ['target'],
    ],
    [
      'verifyAfter with dryRun false (a verify run never replays)',
      { source: SOURCE, dryRun: false, verifyAfter: { auditPath: '/a' } },
      ['dryRun: a verify run never replays'],
    ],
    ['verifyAfter without auditPath', { source: SOURCE, verifyAfter: {} }, ['verifyAfter.auditPath']],
    [
      'verifyAfter with an unknown key',
      { source: SOURCE, verifyAfter: { auditPath: '/a', dryRun: false } },
      ['verifyAfter'],
    ],
    [
      'verifyAfter with a negative clockSkewMs',
      { source: SOURCE, verifyAfter: { auditPath: '/a', clockSkewMs: -1 } },
      ['verifyAfter.clockSkewMs'],
    ],
    [
      'verifyAfter with fromPlan',
      { source: SOURCE, verifyAfter: { auditPath: '/a' }, fromPlan: { auditPath: '/b' } },
      ['verifyAfter: a verify run selects its own members'],
    ],
    [
      'verifyAfter with only',
      { source: SOURCE, verifyAfter: { auditPath: '/a' }, only: { auditPath: '/b', outcomes: ['failed'] } },
      ['verifyAfter'],
    ],
    [
      'several problems at once are all named',
      { source: { type: 'xml' }, batchSize: -1, dryrun: true },
      ['source.type', 'source.path', 'batchSize', 'dryrun'],
    ],
  ];

  it.each(CASES)('%s', (_what, raw, fields) => {
    const { message } = rejection(raw);
    expect(message.startsWith('invalid workflow input: ')).toBe(true);
    for (const field of fields) expect(message).toContain(field);
    // One line: it becomes the workflow's failure message in the Web UI and the CLI.
    expect(message).not.toMatch(/[\r\n]/);
  });

  it('a rejected value is named by its field, not echoed (the input lands in history and logs)', () => {
    const { message } = rejection({ source: { type: 'xml-7d1f', path: '/a' }, runLabel: 42, batchSize: 'big-9c2e' });
    expect(message).not.toContain('xml-7d1f');
    expect(message).not.toContain('big-9c2e');
    expect(message).toContain('source.type');
    expect(message).toContain('runLabel');
    expect(message).toContain('batchSize');
  });

  it('the schema rejects unknown keys at both levels (so the table above is not an accident of one case)', () => {
    expect(backfillInputSchema.safeParse({ source: SOURCE, anything: 1 }).success).toBe(false);
    expect(backfillInputSchema.safeParse({ source: { ...SOURCE, anything: 1 } }).success).toBe(false);
    expect(backfillInputSchema.safeParse({ source: SOURCE }).success).toBe(true);
  });
});
