import { z } from 'zod';
import type { CountryCode } from 'libphonenumber-js';
import { getCountries } from 'libphonenumber-js';
import { codecFromEnvValues, parseCodecKey } from './codec/aes-gcm-codec';
import { MAX_TIMER_MS } from './http/request-deadline';
import {
  resolveTemporalConnection,
  temporalEnvShape,
  TemporalSettingsError,
  type TemporalConnection,
} from './temporal/connect-config';
import { EVENT_NAMINGS, MEMBER_SCOPES } from './webhook/deliveries';
import { ALL_SCOPES } from './webhook/routing';
import { signingSecretProblem } from './webhook/signature';

/** Members a batch keeps in flight by default (BACKFILL_MEMBER_CONCURRENCY). */
export const DEFAULT_MEMBER_CONCURRENCY = 16;

// The worker's whole configuration comes from its environment and is validated once, here, before
// anything connects anywhere. Secrets live only in this object, never in workflow input or history.

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const positiveIntSchema = z.coerce.number().int().positive();
const positiveInt = (fallback: number, schema = positiveIntSchema) =>
  z.preprocess(emptyToUndefined, schema.default(fallback));
const timerMs = (fallback: number) =>
  positiveInt(
    fallback,
    positiveIntSchema.max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest timer)`),
  );
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');
const countries = new Set<string>(getCountries());

/** Every variable, one schema each: the worker reads them all, each CLI command the ones it names (loadSettings). */
const envObject = z.object({
  CHANNEL_API_URL: z.preprocess(emptyToUndefined, httpUrl.default('https://api.channel.io')),
  // Trimmed: surrounding blanks in a credential are a paste error, and blanks alone are no credential.
  CHANNEL_ACCESS_KEY: z.string({ error: 'is required' }).trim().min(1, 'is required'),
  CHANNEL_ACCESS_SECRET: z.string({ error: 'is required' }).trim().min(1, 'is required'),
  CHANNEL_RATE_LIMIT: z.preprocess(emptyToUndefined, z.coerce.number().positive().optional()),
  // Share of the channel's x-ratelimit-limit the job leaves to the customer's other traffic (channel-pacing.ts).
  CHANNEL_RATE_RESERVE: z.preprocess(
    emptyToUndefined,
    z.coerce
      .number()
      .min(0, 'must be a fraction from 0 to 0.9 (0.2 = 20% of the limit)')
      .max(0.9, 'must be a fraction from 0 to 0.9 (0.2 = 20% of the limit)')
      .default(0.2),
  ),
  CHANNEL_MAX_ATTEMPTS: positiveInt(5),
  // The first wait before a failed Channel Talk call is tried again; it doubles per retry, up to 10 s, with jitter.
  CHANNEL_RETRY_BACKOFF_MS: timerMs(200),
  CHANNEL_TIMEOUT_MS: timerMs(10_000),
  // Channel Talk documents 404 for an unknown memberId; 422 has been reported elsewhere (not confirmed).
  CHANNEL_NOT_FOUND_STATUSES: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default('404')
      .transform((s, ctx) => {
        const codes = s.split(',').map((p) => Number(p.trim()));
        if (codes.some((c) => !Number.isInteger(c) || c < 400 || c > 499)) {
          ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of 4xx status codes' });
          return z.NEVER;
        }
        return codes;
      }),
  ),
  UNIFIED_USER_TYPE: z.preprocess(emptyToUndefined, z.string().default('unified')),
  PHONE_DEFAULT_REGION: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default('KR')
      .refine((c) => countries.has(c), 'must be an ISO 3166-1 alpha-2 region such as KR or US')
      .transform((c) => c as CountryCode),
  ),
  WEBHOOK_URL: z.preprocess(emptyToUndefined, httpUrl.optional()),
  WEBHOOK_TOKEN: optionalString,
  // The `type` of a user webhook body is not confirmed by Channel Talk; "user" is the natural reading.
  WEBHOOK_ENTITY_TYPE: z.preprocess(emptyToUndefined, z.string().default('user')),
  WEBHOOK_TIMEOUT_MS: timerMs(10_000),
  // A replay whose lookup is older than this (a deferred or held one, one that waited through a pause) looks the
  // member up again and sends the fresh decision: Channel Talk's own webhooks flow again during a repair (issue 23).
  REPLAY_RECHECK_AFTER_MS: timerMs(2_000),
  // The body's `event` strings. Not confirmed: the incident notice says "upsert"/"delete"; Channel Talk's n8n trigger
  // matches v5 webhooks' `event` against scope names such as `member.deleted`. See docs/channel-talk-unconfirmed.md "Event names".
  WEBHOOK_EVENT_UPSERT: z.preprocess(emptyToUndefined, z.string().default('upsert')),
  WEBHOOK_EVENT_DELETE: z.preprocess(emptyToUndefined, z.string().default('delete')),
  // "notice": the body's event is upsert/delete (the two above); "scopes": the scope Channel Talk sends the change
  // under, one delivery per scope (src/webhook/deliveries.ts). Not confirmed which: docs/channel-talk-unconfirmed.md.
  WEBHOOK_EVENT_NAMES: z.preprocess(
    emptyToUndefined,
    z.enum(EVENT_NAMINGS, { error: 'must be "notice" or "scopes"' }).default('notice'),
  ),
  // The scopes the WEBHOOK_URL endpoint stands for (a registered webhook has its own): changes under other scopes
  // are not sent to it. Default all three member scopes.
  WEBHOOK_URL_SCOPES: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default(MEMBER_SCOPES.join(','))
      .transform((v, ctx) => {
        const scopes = [...new Set(v.split(',').map((p) => p.trim()))].filter((p) => p !== '');
        const known = [...MEMBER_SCOPES, ALL_SCOPES];
        if (scopes.length === 0 || scopes.some((p) => !known.includes(p))) {
          ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${known.join(', ')}` });
          return z.NEVER;
        }
        return scopes;
      }),
  ),
  // Target channel-webhooks: send v5 bodies to registered webhooks whose apiVersion is not v5 (default: skip them).
  WEBHOOK_SEND_NON_V5: z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  ),
  // Standard Webhooks signing secret: `whsec_<base64>` (preferred) or a raw secret. Unset: deliveries are not signed.
  WEBHOOK_SIGNING_SECRET: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .superRefine((v, ctx) => {
        const problem = v === undefined ? undefined : signingSecretProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
  ),
  // How to reach Temporal: the Temporal CLI's variables and temporal.toml profiles (src/temporal/connect-config.ts).
  ...temporalEnvShape,
  BACKFILL_TASK_QUEUE: z.preprocess(emptyToUndefined, z.string().default('webhook-backfill')),
  BACKFILL_DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('./backfill-data')),
  // Directories a file source (source.path) must lie under; unset = any path the worker can read.
  BACKFILL_SOURCE_DIRS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .transform((v) =>
        v
          .split(/[,:]/)
          .map((d) => d.trim())
          .filter((d) => d !== ''),
      )
      .pipe(z.array(z.string()).min(1, 'must name at least one directory'))
      .optional(),
  ),
  BACKFILL_MEMBER_CONCURRENCY: positiveInt(DEFAULT_MEMBER_CONCURRENCY),
  LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO')),
  LOG_FORMAT: z.preprocess(emptyToUndefined, z.enum(['json', 'text']).default('json')),
  // host:port for a Prometheus /metrics endpoint (SDK and job metrics); unset: no metrics endpoint.
  BACKFILL_METRICS_ADDRESS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9464')
      .optional(),
  ),
  // Optional payload encryption (AES-256-GCM) of everything the worker and clients send to Temporal.
  BACKFILL_CODEC_KEY: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .superRefine((v, ctx) => {
        const parsed = v === undefined ? undefined : parseCodecKey(v);
        if (parsed && 'error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
      }),
  ),
  BACKFILL_CODEC_KEY_ID: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1 to 128 printable ASCII characters without spaces')
      .optional(),
  ),
  // PostgreSQL for `"source": {"type": "postgres", ...}` and BACKFILL_AUDIT_STORE=postgres. It holds a
  // password, so it lives here and never in workflow input.
  BACKFILL_DATABASE_URL: z.preprocess(
    emptyToUndefined,
    z.string().refine(isPostgresUrl, 'must be a postgres:// or postgresql:// URL').optional(),
  ),
  // MySQL/MariaDB for `"source": {"type": "mysql", ...}`; a password too, so here and never in workflow input.
  BACKFILL_MYSQL_URL: z.preprocess(
    emptyToUndefined,
    z.string().refine(isMysqlUrl, 'must be a mysql:// or mariadb:// URL').optional(),
  ),
  BACKFILL_AUDIT_STORE: z.preprocess(
    emptyToUndefined,
    z.enum(['file', 'postgres'], { error: 'must be "file" or "postgres"' }).default('file'),
  ),
  // Where the state workers share lives: "file" (BACKFILL_DATA_DIR, one machine or a shared volume) or
  // "postgres" (BACKFILL_DATABASE_URL: work set, batch boundaries, pending replays and the audit log, so workers
  // on different hosts share nothing but Temporal and PostgreSQL).
  BACKFILL_STORE: z.preprocess(
    emptyToUndefined,
    z.enum(['file', 'postgres'], { error: 'must be "file" or "postgres"' }).default('file'),
  ),
  // "true": a completed backfill's work set and pending replays (personal data) are kept, not removed.
  BACKFILL_KEEP_WORK_DATA: z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false'], { error: 'must be "true" or "false"' })
      .default('false')
      .transform((v) => v === 'true'),
  ),
});
/** Checks across variables; each skips when the variables it reads are not among those loaded. */
const crossChecks = <T extends z.ZodType>(schema: T) =>
  schema.superRefine(requireDatabaseUrlForPostgres as never).superRefine(noNoticeNamesWithScopes as never);
export const envSchema = crossChecks(envObject);
export type EnvName = keyof typeof envObject.shape;

/** With WEBHOOK_EVENT_NAMES=scopes the event is the scope: a renamed upsert or delete would be silently ignored. */
function noNoticeNamesWithScopes(
  env: { WEBHOOK_EVENT_NAMES?: string; WEBHOOK_EVENT_UPSERT?: string; WEBHOOK_EVENT_DELETE?: string },
  ctx: z.RefinementCtx,
): void {
  if (env.WEBHOOK_EVENT_NAMES !== 'scopes') return;
  const defaults = { WEBHOOK_EVENT_UPSERT: 'upsert', WEBHOOK_EVENT_DELETE: 'delete' } as const;
  for (const name of ['WEBHOOK_EVENT_UPSERT', 'WEBHOOK_EVENT_DELETE'] as const) {
    if (env[name] !== undefined && env[name] !== defaults[name])
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'is set, but events named by their scopes (the scopes naming) never use it: unset it',
      });
  }
}

/** The PostgreSQL audit store needs a database; shared with every schema that picks these two variables. */
export function requireDatabaseUrlForPostgres(
  env: {
    BACKFILL_AUDIT_STORE?: 'file' | 'postgres';
    BACKFILL_STORE?: 'file' | 'postgres';
    BACKFILL_DATABASE_URL?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  for (const name of ['BACKFILL_STORE', 'BACKFILL_AUDIT_STORE'] as const) {
    if (env[name] === 'postgres' && env.BACKFILL_DATABASE_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'is "postgres" but BACKFILL_DATABASE_URL is not set' });
    }
  }
}

/** BACKFILL_STORE=postgres keeps the audit log in PostgreSQL too (BACKFILL_AUDIT_STORE=postgres alone: only it). */
export function auditStoreOf(config: Pick<Config, 'BACKFILL_STORE' | 'BACKFILL_AUDIT_STORE'>): 'file' | 'postgres' {
  return config.BACKFILL_STORE === 'postgres' ? 'postgres' : config.BACKFILL_AUDIT_STORE;
}

/** A `mysql://` or `mariadb://` URL (mysql2 reads both alike); the mysql source checks it again where it reads. */
export function isMysqlUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'mysql:' || protocol === 'mariadb:';
  } catch {
    return false;
  }
}

function isPostgresUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'postgres:' || protocol === 'postgresql:';
  } catch {
    return false;
  }
}

type EnvValues = z.infer<typeof envSchema>;
/**
 * The validated environment. TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE are the effective values (variable,
 * else the profile, else localhost:7233 / default); `temporal` is the connection they and the TLS settings make.
 */
export type Config = Omit<EnvValues, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'> & {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  temporal: TemporalConnection;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the worker's whole environment; throws one ConfigError whose message names every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return withTemporal(env, loadSettings(env, Object.keys(envObject.shape) as EnvName[]) as EnvValues);
}

/** What every store needs (the worker, `report`, `purge`): which store, where its files go, which database. */
export const STORE_SETTINGS = [
  'BACKFILL_DATA_DIR',
  'BACKFILL_STORE',
  'BACKFILL_AUDIT_STORE',
  'BACKFILL_DATABASE_URL',
] as const;
export type StoreSettings = Pick<EnvValues, (typeof STORE_SETTINGS)[number]>;
/** What a Temporal client needs besides the connection (resolved from TEMPORAL_* and profiles by withTemporal). */
export const CLIENT_SETTINGS = [
  ...(Object.keys(temporalEnvShape) as (keyof typeof temporalEnvShape)[]),
  'BACKFILL_TASK_QUEUE',
  'BACKFILL_CODEC_KEY',
  'BACKFILL_CODEC_KEY_ID',
] as const;

/**
 * The one way settings are read, by the worker and every CLI command: the variables `names` (each with its one
 * schema above), checked together (a PostgreSQL store needs BACKFILL_DATABASE_URL). A bad variable throws one
 * ConfigError naming every bad variable and never echoing a value (it may be a secret).
 */
export function loadSettings<K extends EnvName>(env: NodeJS.ProcessEnv, names: readonly K[]): Pick<EnvValues, K> {
  // zod's pick() types its mask for literal key sets; the names are checked against EnvName above.
  const mask = Object.fromEntries(names.map((name) => [name, true])) as Partial<Record<EnvName, true>>;
  const result = crossChecks(envObject.pick(mask as never)).safeParse(env);
  if (result.success) return result.data as unknown as Pick<EnvValues, K>;
  const lines = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'environment');
    const message = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return `${name} ${message}`;
  });
  throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
}

/** Adds the effective Temporal address and namespace (variable, else profile, else default) and the connection. */
export function withTemporal<T extends object>(
  env: NodeJS.ProcessEnv,
  values: T,
): Omit<T, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'> & {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  temporal: TemporalConnection;
} {
  let temporal: TemporalConnection;
  try {
    temporal = resolveTemporalConnection(env);
  } catch (err) {
    if (err instanceof TemporalSettingsError)
      throw new ConfigError(`invalid configuration: ${err.problems.join('; ')}`);
    throw err;
  }
  return { ...values, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, temporal };
}

/** The configuration as it may be logged: secrets replaced by whether they are set. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    CHANNEL_API_URL: config.CHANNEL_API_URL,
    CHANNEL_ACCESS_KEY: config.CHANNEL_ACCESS_KEY ? '(set)' : '(missing)',
    CHANNEL_ACCESS_SECRET: config.CHANNEL_ACCESS_SECRET ? '(set)' : '(missing)',
    CHANNEL_RATE_LIMIT: config.CHANNEL_RATE_LIMIT ?? '(none: paced from the rate-limit headers)',
    CHANNEL_RATE_RESERVE: config.CHANNEL_RATE_RESERVE,
    WEBHOOK_URL: config.WEBHOOK_URL ? redactUrl(config.WEBHOOK_URL) : '(none: dry runs only)',
    WEBHOOK_TOKEN: config.WEBHOOK_TOKEN ? '(set)' : '(none)',
    WEBHOOK_SIGNING_SECRET: config.WEBHOOK_SIGNING_SECRET
      ? '(set: deliveries are signed)'
      : '(none: deliveries are not signed)',
    WEBHOOK_EVENT_UPSERT: config.WEBHOOK_EVENT_UPSERT,
    WEBHOOK_EVENT_DELETE: config.WEBHOOK_EVENT_DELETE,
    WEBHOOK_EVENT_NAMES: config.WEBHOOK_EVENT_NAMES,
    WEBHOOK_URL_SCOPES: config.WEBHOOK_URL_SCOPES.join(','),
    WEBHOOK_SEND_NON_V5: config.WEBHOOK_SEND_NON_V5,
    ...config.temporal.summary,
    BACKFILL_TASK_QUEUE: config.BACKFILL_TASK_QUEUE,
    BACKFILL_DATA_DIR: config.BACKFILL_DATA_DIR,
    BACKFILL_SOURCE_DIRS: config.BACKFILL_SOURCE_DIRS?.join(',') ?? '(any)',
    BACKFILL_DATABASE_URL: config.BACKFILL_DATABASE_URL ? redactUrl(config.BACKFILL_DATABASE_URL) : '(none)',
    BACKFILL_MYSQL_URL: config.BACKFILL_MYSQL_URL ? redactUrl(config.BACKFILL_MYSQL_URL) : '(none)',
    BACKFILL_AUDIT_STORE: auditStoreOf(config),
    BACKFILL_STORE: config.BACKFILL_STORE,
    BACKFILL_KEEP_WORK_DATA: config.BACKFILL_KEEP_WORK_DATA,
    BACKFILL_CODEC: config.BACKFILL_CODEC_KEY
      ? `AES-256-GCM, key id ${codecFromEnvValues(config)?.keyId}`
      : '(off: payloads are stored as plain JSON)',
  };
}

function redactUrl(url: string): string {
  const u = new URL(url);
  u.search = '';
  u.username = '';
  u.password = '';
  return u.toString();
}
