import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, envSchema, loadConfig, type Config } from '../../src/config';
import { freePort } from '../../dev/temporal-cli';

// loadConfig is the worker's only gate before it connects anywhere: every variable's default, every
// required one, every way a value can be wrong, and that a failure message never echoes a value.

const KEY = 'ck-live-4c1e9a0b77d2';
const SECRET = 'cs-live-8e2f6d13a9b5';
const TOKEN = 'wt-live-55aa0c3e19f7';
/** A well-formed payload codec key (base64 of 32 bytes), and one a byte short. */
const CODEC_KEY = Buffer.alloc(32, 7).toString('base64');
const SHORT_CODEC_KEY = Buffer.alloc(31, 9).toString('base64');

/** The smallest valid environment: the two required variables. */
const REQUIRED = { CHANNEL_ACCESS_KEY: KEY, CHANNEL_ACCESS_SECRET: SECRET } as const;

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(Object.keys(env))}`);
}

describe('loadConfig: defaults', () => {
  // `temporal` is the connection built from the TEMPORAL_* rows (test/unit/temporal-connect-config.test.ts).
  const DEFAULTS: Record<Exclude<keyof Config, 'temporal'>, unknown> = {
    BACKFILL_STORE: 'file',
    BACKFILL_KEEP_WORK_DATA: false,
    CHANNEL_API_URL: 'https://api.channel.io',
    CHANNEL_ACCESS_KEY: KEY,
    CHANNEL_ACCESS_SECRET: SECRET,
    CHANNEL_RATE_LIMIT: undefined,
    CHANNEL_RATE_RESERVE: 0.2,
    CHANNEL_MAX_ATTEMPTS: 5,
    CHANNEL_RETRY_BACKOFF_MS: 200,
    CHANNEL_TIMEOUT_MS: 10_000,
    CHANNEL_NOT_FOUND_STATUSES: [404],
    UNIFIED_USER_TYPE: 'unified',
    PHONE_DEFAULT_REGION: 'KR',
    WEBHOOK_URL: undefined,
    WEBHOOK_TOKEN: undefined,
    WEBHOOK_ENTITY_TYPE: 'user',
    WEBHOOK_TIMEOUT_MS: 10_000,
    REPLAY_RECHECK_AFTER_MS: 2_000,
    WEBHOOK_EVENT_UPSERT: 'upsert',
    WEBHOOK_EVENT_DELETE: 'delete',
    WEBHOOK_EVENT_NAMES: 'notice',
    WEBHOOK_URL_SCOPES: ['member.upserted.contact', 'member.upserted.subscription', 'member.deleted'],
    WEBHOOK_SEND_NON_V5: false,
    TEMPORAL_ADDRESS: 'localhost:7233',
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_API_KEY: undefined,
    TEMPORAL_TLS: undefined,
    TEMPORAL_TLS_CLIENT_CERT_PATH: undefined,
    TEMPORAL_TLS_CLIENT_CERT_DATA: undefined,
    TEMPORAL_TLS_CLIENT_KEY_PATH: undefined,
    TEMPORAL_TLS_CLIENT_KEY_DATA: undefined,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined,
    TEMPORAL_TLS_SERVER_CA_CERT_DATA: undefined,
    TEMPORAL_TLS_SERVER_NAME: undefined,
    TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: undefined,
    TEMPORAL_PROFILE: undefined,
    TEMPORAL_CONFIG_FILE: undefined,
    BACKFILL_TASK_QUEUE: 'webhook-backfill',
    BACKFILL_DATA_DIR: './backfill-data',
    BACKFILL_SOURCE_DIRS: undefined,
    BACKFILL_MEMBER_CONCURRENCY: 16,
    BACKFILL_CODEC_KEY: undefined,
    BACKFILL_CODEC_KEY_ID: undefined,
    WEBHOOK_SIGNING_SECRET: undefined,
    BACKFILL_DATABASE_URL: undefined,
    BACKFILL_MYSQL_URL: undefined,
    BACKFILL_AUDIT_STORE: 'file',
    LOG_LEVEL: 'INFO',
    LOG_FORMAT: 'json',
    BACKFILL_METRICS_ADDRESS: undefined,
  };

  it('the table names every variable the schema knows (a new variable needs a row here)', () => {
    expect(Object.keys(DEFAULTS).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('only the two credentials are needed; everything else has its documented default', () => {
    const config = loadConfig({ ...REQUIRED });
    for (const [name, value] of Object.entries(DEFAULTS)) expect(config[name as keyof Config], name).toEqual(value);
    expect(config.temporal.options).toEqual({ address: 'localhost:7233' });
  });

  it.each(Object.entries(DEFAULTS).filter(([name]) => !(name in REQUIRED)))(
    '%s set to an empty or blank string means its default',
    (name, value) => {
      expect(loadConfig({ ...REQUIRED, [name]: '' })[name as keyof Config]).toEqual(value);
      expect(loadConfig({ ...REQUIRED, [name]: '   ' })[name as keyof Config]).toEqual(value);
    },
  );

  it('variables the schema does not know are ignored (the whole process environment is passed in)', () => {
    expect(() => loadConfig({ ...REQUIRED, PATH: '/usr/bin', HOME: '/root', SOMETHING_ELSE: 'x' })).not.toThrow();
  });
});

describe('loadConfig: values that are set', () => {
  const CASES: [name: string, raw: string, parsed: unknown][] = [
    ['CHANNEL_API_URL', 'http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['CHANNEL_RATE_LIMIT', '10', 10],
    ['CHANNEL_RATE_LIMIT', '2.5', 2.5],
    ['CHANNEL_RATE_RESERVE', '0', 0],
    ['CHANNEL_RATE_RESERVE', '0.35', 0.35],
    ['CHANNEL_MAX_ATTEMPTS', '3', 3],
    ['CHANNEL_RETRY_BACKOFF_MS', '20', 20],
    ['CHANNEL_TIMEOUT_MS', '2500', 2500],
    ['CHANNEL_NOT_FOUND_STATUSES', '404,422', [404, 422]],
    ['CHANNEL_NOT_FOUND_STATUSES', ' 404 , 422 ', [404, 422]],
    ['CHANNEL_NOT_FOUND_STATUSES', '422', [422]],
    ['UNIFIED_USER_TYPE', 'merged', 'merged'],
    ['PHONE_DEFAULT_REGION', 'US', 'US'],
    ['WEBHOOK_URL', 'https://customer.example/hook?x=1', 'https://customer.example/hook?x=1'],
    ['WEBHOOK_TOKEN', TOKEN, TOKEN],
    ['WEBHOOK_ENTITY_TYPE', 'member', 'member'],
    ['WEBHOOK_TIMEOUT_MS', '1500', 1500],
    ['REPLAY_RECHECK_AFTER_MS', '500', 500],
    ['WEBHOOK_EVENT_UPSERT', 'member.upserted.contact', 'member.upserted.contact'],
    ['WEBHOOK_EVENT_DELETE', 'member.deleted', 'member.deleted'],
    ['WEBHOOK_SEND_NON_V5', 'true', true],
    ['WEBHOOK_SEND_NON_V5', 'false', false],
    ['WEBHOOK_EVENT_NAMES', 'scopes', 'scopes'],
    ['WEBHOOK_EVENT_NAMES', 'notice', 'notice'],
    ['WEBHOOK_URL_SCOPES', 'member.upserted.contact', ['member.upserted.contact']],
    [
      'WEBHOOK_URL_SCOPES',
      ' member.deleted , member.upserted.subscription,member.deleted ',
      ['member.deleted', 'member.upserted.subscription'],
    ],
    ['WEBHOOK_URL_SCOPES', '*', ['*']],
    ['TEMPORAL_ADDRESS', '127.0.0.1:7999', '127.0.0.1:7999'],
    ['TEMPORAL_NAMESPACE', 'backfills', 'backfills'],
    ['BACKFILL_TASK_QUEUE', 'q-1', 'q-1'],
    ['BACKFILL_DATA_DIR', '/var/lib/backfill', '/var/lib/backfill'],
    ['BACKFILL_MEMBER_CONCURRENCY', '4', 4],
    ['BACKFILL_CODEC_KEY', CODEC_KEY, CODEC_KEY],
    ['WEBHOOK_SIGNING_SECRET', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    ['LOG_LEVEL', 'DEBUG', 'DEBUG'],
    ['LOG_FORMAT', 'text', 'text'],
    ['BACKFILL_METRICS_ADDRESS', '0.0.0.0:9464', '0.0.0.0:9464'],
    ['BACKFILL_CODEC_KEY_ID', 'key-2024-11', 'key-2024-11'],
  ];
  it.each(CASES)('%s=%j parses to %j', (name, raw, parsed) => {
    expect(loadConfig({ ...REQUIRED, [name]: raw })[name as keyof Config]).toEqual(parsed);
  });
});

describe('loadConfig: rejected environments name the variable', () => {
  const CASES: [what: string, env: NodeJS.ProcessEnv, names: string[]][] = [
    ['CHANNEL_ACCESS_KEY missing', { CHANNEL_ACCESS_SECRET: SECRET }, ['CHANNEL_ACCESS_KEY is required']],
    [
      'CHANNEL_ACCESS_KEY empty',
      { CHANNEL_ACCESS_KEY: '', CHANNEL_ACCESS_SECRET: SECRET },
      ['CHANNEL_ACCESS_KEY is required'],
    ],
    ['CHANNEL_ACCESS_SECRET missing', { CHANNEL_ACCESS_KEY: KEY }, ['CHANNEL_ACCESS_SECRET is required']],
    [
      'CHANNEL_ACCESS_SECRET empty',
      { CHANNEL_ACCESS_KEY: KEY, CHANNEL_ACCESS_SECRET: '' },
      ['CHANNEL_ACCESS_SECRET is required'],
    ],
    ['both credentials missing', {}, ['CHANNEL_ACCESS_KEY is required', 'CHANNEL_ACCESS_SECRET is required']],
    ['CHANNEL_API_URL not a URL', { ...REQUIRED, CHANNEL_API_URL: 'api.channel.io' }, ['CHANNEL_API_URL']],
    [
      'CHANNEL_API_URL not http(s)',
      { ...REQUIRED, CHANNEL_API_URL: 'ftp://api.channel.io' },
      ['CHANNEL_API_URL must be an http(s) URL'],
    ],
    ['WEBHOOK_URL not a URL', { ...REQUIRED, WEBHOOK_URL: 'customer.example/hook' }, ['WEBHOOK_URL']],
    [
      'WEBHOOK_URL not http(s)',
      { ...REQUIRED, WEBHOOK_URL: 'file:///etc/passwd' },
      ['WEBHOOK_URL must be an http(s) URL'],
    ],
    ['WEBHOOK_SEND_NON_V5 yes', { ...REQUIRED, WEBHOOK_SEND_NON_V5: 'yes' }, ['WEBHOOK_SEND_NON_V5']],
    ['WEBHOOK_EVENT_NAMES unknown', { ...REQUIRED, WEBHOOK_EVENT_NAMES: 'v5' }, ['WEBHOOK_EVENT_NAMES']],
    [
      'WEBHOOK_URL_SCOPES a lead scope',
      { ...REQUIRED, WEBHOOK_URL_SCOPES: 'member.deleted,lead.deleted' },
      ['WEBHOOK_URL_SCOPES must be a comma-separated list of'],
    ],
    ['WEBHOOK_URL_SCOPES only commas', { ...REQUIRED, WEBHOOK_URL_SCOPES: ' , ' }, ['WEBHOOK_URL_SCOPES']],
    [
      'WEBHOOK_EVENT_UPSERT renamed with WEBHOOK_EVENT_NAMES=scopes',
      { ...REQUIRED, WEBHOOK_EVENT_NAMES: 'scopes', WEBHOOK_EVENT_UPSERT: 'member.upserted.contact' },
      ['WEBHOOK_EVENT_UPSERT is set, but events named by their scopes'],
    ],
    [
      'WEBHOOK_EVENT_DELETE renamed with WEBHOOK_EVENT_NAMES=scopes',
      { ...REQUIRED, WEBHOOK_EVENT_NAMES: 'scopes', WEBHOOK_EVENT_DELETE: 'member.deleted' },
      ['WEBHOOK_EVENT_DELETE is set, but events named by their scopes'],
    ],
    ['CHANNEL_RATE_LIMIT 0', { ...REQUIRED, CHANNEL_RATE_LIMIT: '0' }, ['CHANNEL_RATE_LIMIT']],
    ['CHANNEL_RATE_LIMIT negative', { ...REQUIRED, CHANNEL_RATE_LIMIT: '-5' }, ['CHANNEL_RATE_LIMIT']],
    ['CHANNEL_RATE_LIMIT text', { ...REQUIRED, CHANNEL_RATE_LIMIT: 'ten' }, ['CHANNEL_RATE_LIMIT']],
    ['CHANNEL_RATE_LIMIT with a unit', { ...REQUIRED, CHANNEL_RATE_LIMIT: '10/s' }, ['CHANNEL_RATE_LIMIT']],
    ['CHANNEL_RATE_LIMIT Infinity', { ...REQUIRED, CHANNEL_RATE_LIMIT: 'Infinity' }, ['CHANNEL_RATE_LIMIT']],
    ['CHANNEL_RATE_RESERVE as a percentage', { ...REQUIRED, CHANNEL_RATE_RESERVE: '20' }, ['CHANNEL_RATE_RESERVE']],
    ['CHANNEL_RATE_RESERVE negative', { ...REQUIRED, CHANNEL_RATE_RESERVE: '-0.1' }, ['CHANNEL_RATE_RESERVE']],
    ['CHANNEL_RATE_RESERVE text', { ...REQUIRED, CHANNEL_RATE_RESERVE: 'some' }, ['CHANNEL_RATE_RESERVE']],
    ['CHANNEL_MAX_ATTEMPTS 0', { ...REQUIRED, CHANNEL_MAX_ATTEMPTS: '0' }, ['CHANNEL_MAX_ATTEMPTS']],
    ['CHANNEL_MAX_ATTEMPTS fractional', { ...REQUIRED, CHANNEL_MAX_ATTEMPTS: '1.5' }, ['CHANNEL_MAX_ATTEMPTS']],
    ['CHANNEL_TIMEOUT_MS text', { ...REQUIRED, CHANNEL_TIMEOUT_MS: '10s' }, ['CHANNEL_TIMEOUT_MS']],
    ['WEBHOOK_TIMEOUT_MS negative', { ...REQUIRED, WEBHOOK_TIMEOUT_MS: '-1' }, ['WEBHOOK_TIMEOUT_MS']],
    ['REPLAY_RECHECK_AFTER_MS zero', { ...REQUIRED, REPLAY_RECHECK_AFTER_MS: '0' }, ['REPLAY_RECHECK_AFTER_MS']],
    [
      'CHANNEL_TIMEOUT_MS past a timer',
      { ...REQUIRED, CHANNEL_TIMEOUT_MS: '2147483648' },
      ['CHANNEL_TIMEOUT_MS must be at most 2147483647 ms'],
    ],
    [
      'WEBHOOK_TIMEOUT_MS past a timer',
      { ...REQUIRED, WEBHOOK_TIMEOUT_MS: '1e12' },
      ['WEBHOOK_TIMEOUT_MS must be at most'],
    ],
    [
      'BACKFILL_MEMBER_CONCURRENCY 0',
      { ...REQUIRED, BACKFILL_MEMBER_CONCURRENCY: '0' },
      ['BACKFILL_MEMBER_CONCURRENCY'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES text',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: 'notFound' },
      ['CHANNEL_NOT_FOUND_STATUSES must be a comma-separated list of 4xx status codes'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES a 2xx',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: '200' },
      ['CHANNEL_NOT_FOUND_STATUSES'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES a 5xx',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: '404,500' },
      ['CHANNEL_NOT_FOUND_STATUSES'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES trailing comma',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: '404,' },
      ['CHANNEL_NOT_FOUND_STATUSES'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES wrong separator',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: '404;422' },
      ['CHANNEL_NOT_FOUND_STATUSES'],
    ],
    [
      'CHANNEL_NOT_FOUND_STATUSES fractional',
      { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: '404.5' },
      ['CHANNEL_NOT_FOUND_STATUSES'],
    ],
    [
      'PHONE_DEFAULT_REGION unknown',
      { ...REQUIRED, PHONE_DEFAULT_REGION: 'XX' },
      ['PHONE_DEFAULT_REGION must be an ISO 3166-1 alpha-2 region'],
    ],
    ['PHONE_DEFAULT_REGION alpha-3', { ...REQUIRED, PHONE_DEFAULT_REGION: 'KOR' }, ['PHONE_DEFAULT_REGION']],
    ['PHONE_DEFAULT_REGION lower case', { ...REQUIRED, PHONE_DEFAULT_REGION: 'kr' }, ['PHONE_DEFAULT_REGION']],
    ['PHONE_DEFAULT_REGION a calling code', { ...REQUIRED, PHONE_DEFAULT_REGION: '+82' }, ['PHONE_DEFAULT_REGION']],
    [
      'BACKFILL_CODEC_KEY not base64',
      { ...REQUIRED, BACKFILL_CODEC_KEY: 'not base64!' },
      ['BACKFILL_CODEC_KEY must be base64'],
    ],
    [
      'BACKFILL_CODEC_KEY too short',
      { ...REQUIRED, BACKFILL_CODEC_KEY: SHORT_CODEC_KEY },
      ['BACKFILL_CODEC_KEY must be the base64 of exactly 32 bytes'],
    ],
    [
      'WEBHOOK_SIGNING_SECRET bad whsec_',
      { ...REQUIRED, WEBHOOK_SIGNING_SECRET: 'whsec_!!' },
      ['WEBHOOK_SIGNING_SECRET'],
    ],
    [
      'CHANNEL_ACCESS_KEY only blanks',
      { CHANNEL_ACCESS_KEY: '   ', CHANNEL_ACCESS_SECRET: SECRET },
      ['CHANNEL_ACCESS_KEY is required'],
    ],
    ['LOG_LEVEL unknown', { ...REQUIRED, LOG_LEVEL: 'LOUD' }, ['LOG_LEVEL']],
    ['LOG_FORMAT unknown', { ...REQUIRED, LOG_FORMAT: 'xml' }, ['LOG_FORMAT']],
    [
      'BACKFILL_METRICS_ADDRESS without a port',
      { ...REQUIRED, BACKFILL_METRICS_ADDRESS: 'localhost' },
      ['BACKFILL_METRICS_ADDRESS must be host:port'],
    ],
    [
      'BACKFILL_AUDIT_STORE postgres without a database',
      { ...REQUIRED, BACKFILL_AUDIT_STORE: 'postgres' },
      ['BACKFILL_AUDIT_STORE', 'BACKFILL_DATABASE_URL'],
    ],
    [
      'BACKFILL_MYSQL_URL not a mysql:// URL',
      { ...REQUIRED, BACKFILL_MYSQL_URL: 'postgres://u:p@db/shop' },
      ['BACKFILL_MYSQL_URL must be a mysql:// or mariadb:// URL'],
    ],
    [
      'BACKFILL_CODEC_KEY_ID with a space',
      { ...REQUIRED, BACKFILL_CODEC_KEY: CODEC_KEY, BACKFILL_CODEC_KEY_ID: 'key 1' },
      ['BACKFILL_CODEC_KEY_ID'],
    ],
    [
      'several bad variables at once',
      { CHANNEL_ACCESS_SECRET: SECRET, CHANNEL_RATE_LIMIT: '0', PHONE_DEFAULT_REGION: 'XX', WEBHOOK_URL: 'nope' },
      ['CHANNEL_ACCESS_KEY is required', 'CHANNEL_RATE_LIMIT', 'PHONE_DEFAULT_REGION', 'WEBHOOK_URL'],
    ],
  ];

  it.each(CASES)('%s', (_what, env, names) => {
    const err = configError(env);
    expect(err.message.startsWith('invalid configuration: ')).toBe(true);
    for (const name of names) expect(err.message).toContain(name);
    // One line, whatever is wrong: the worker prints it as its only output.
    expect(err.message).not.toMatch(/[\r\n]/);
    // Only the variables that are wrong are named.
    const named = Object.keys(envSchema.shape).filter((n) => new RegExp(`\\b${n}\\b`).test(err.message));
    expect(named.sort()).toEqual([...new Set(names.map((n) => n.split(' ')[0]!))].sort());
  });
});

describe('loadConfig: failure messages never contain a value', () => {
  // Secrets set correctly while something else is wrong, and secrets pasted into the wrong variable.
  const CASES: [what: string, env: NodeJS.ProcessEnv][] = [
    [
      'credentials set, another variable bad',
      { ...REQUIRED, WEBHOOK_TOKEN: TOKEN, CHANNEL_RATE_LIMIT: 'x', WEBHOOK_URL: 'bad' },
    ],
    ['secret pasted into CHANNEL_RATE_LIMIT', { ...REQUIRED, CHANNEL_RATE_LIMIT: SECRET }],
    ['secret pasted into CHANNEL_API_URL', { ...REQUIRED, CHANNEL_API_URL: SECRET }],
    ['token pasted into WEBHOOK_URL', { ...REQUIRED, WEBHOOK_URL: `${TOKEN}` }],
    ['token inside a non-http WEBHOOK_URL', { ...REQUIRED, WEBHOOK_URL: `ftp://customer.example/hook?token=${TOKEN}` }],
    ['key pasted into PHONE_DEFAULT_REGION', { ...REQUIRED, PHONE_DEFAULT_REGION: KEY }],
    ['key pasted into CHANNEL_NOT_FOUND_STATUSES', { ...REQUIRED, CHANNEL_NOT_FOUND_STATUSES: KEY }],
    ['secret pasted into CHANNEL_MAX_ATTEMPTS', { ...REQUIRED, CHANNEL_MAX_ATTEMPTS: SECRET }],
    ['key missing while secret and token are set', { CHANNEL_ACCESS_SECRET: SECRET, WEBHOOK_TOKEN: TOKEN }],
    ['a codec key one byte short', { ...REQUIRED, BACKFILL_CODEC_KEY: SHORT_CODEC_KEY }],
    [
      'a good codec key while another variable is bad',
      { ...REQUIRED, BACKFILL_CODEC_KEY: CODEC_KEY, CHANNEL_TIMEOUT_MS: 'soon' },
    ],
  ];
  it.each(CASES)('%s', (_what, env) => {
    const { message } = configError(env);
    for (const value of [KEY, SECRET, TOKEN, CODEC_KEY, SHORT_CODEC_KEY]) expect(message).not.toContain(value);
  });

  it('describeConfig (what the worker logs at start) shows whether secrets are set, not their values', () => {
    const config = loadConfig({
      ...REQUIRED,
      WEBHOOK_URL: `https://customer.example/hook?token=${TOKEN}`,
      WEBHOOK_TOKEN: TOKEN,
      BACKFILL_CODEC_KEY: CODEC_KEY,
    });
    const logged = JSON.stringify(describeConfig(config));
    for (const value of [KEY, SECRET, TOKEN, CODEC_KEY]) expect(logged).not.toContain(value);
    expect(describeConfig(config)).toMatchObject({
      CHANNEL_ACCESS_KEY: '(set)',
      CHANNEL_ACCESS_SECRET: '(set)',
      WEBHOOK_TOKEN: '(set)',
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// The worker process itself: a bad environment stops it before it connects anywhere.

const ROOT = path.resolve(__dirname, '../..');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * `npx tsx src/worker.ts` (what `npm run worker` runs) with exactly `env` plus PATH/HOME; killed after
 * 30 s. The project's own tsx binary is run directly, which is what npx resolves to: npx itself may add
 * npm's warnings about the machine's npmrc to stderr, which are not the worker's output.
 */
function runWorker(env: Record<string, string>): Promise<Exit> {
  const started = Date.now();
  const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['src/worker.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('npm run worker (src/worker.ts) with a bad environment', () => {
  it('exits 2 with one line naming the variables, before connecting to Temporal', async () => {
    // Nothing listens on this port: if the worker tried to connect first, it would report a connection error.
    const closedPort = await freePort();
    const run = await runWorker({
      CHANNEL_ACCESS_SECRET: SECRET,
      WEBHOOK_TOKEN: TOKEN,
      CHANNEL_RATE_LIMIT: '-3',
      TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}`,
    });
    expect(run.code, run.stderr).toBe(2);
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^invalid configuration: /);
    expect(lines[0]).toContain('CHANNEL_ACCESS_KEY is required');
    expect(lines[0]).toContain('CHANNEL_RATE_LIMIT');
    expect(lines[0]).not.toMatch(/connect|ECONNREFUSED|transport|worker failed/i);
    // It did not get as far as announcing itself, and printed no secret anywhere.
    expect(run.stdout).toBe('');
    for (const value of [SECRET, TOKEN]) expect(run.stdout + run.stderr).not.toContain(value);
  }, 60_000);

  it('contrast: the same closed port with a valid environment fails on the connection instead (exit 1)', async () => {
    const closedPort = await freePort();
    const run = await runWorker({ ...REQUIRED, WEBHOOK_TOKEN: TOKEN, TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}` });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/worker failed: /);
    expect(run.stderr).not.toContain('invalid configuration');
    // The start-up line logs the configuration with secrets replaced by "(set)".
    // (a JSON log line on stderr, like every log line of the worker)
    expect(run.stderr).toContain('"message":"webhook-backfill worker starting"');
    for (const value of [KEY, SECRET, TOKEN]) expect(run.stdout + run.stderr).not.toContain(value);
  }, 60_000);
});
