// Issue 22 item 2: one settings loader and one store factory. Every command reads its variables with the worker's
// schemas and reports a bad one in the same words (never its value); the same environment chooses the same store.
import { describe, expect, it } from 'vitest';
import { loadAuditEnv, openAuditReader } from '../../src/cli/audit-source';
import { CliError, EXIT } from '../../src/cli/errors';
import { loadCliEnv } from '../../src/cli/temporal-env';
import { ConfigError, loadConfig, loadSettings, STORE_SETTINGS } from '../../src/config';
import { openStores } from '../../src/store/stores';

const WORKER = { CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's' };
const DB = 'postgres://user:s3cret-pw@127.0.0.1:1/db';

/** The message a loader throws for `env`, as the worker (ConfigError) or the CLI (CliError, exit 2) throws it. */
function problem(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    if (err instanceof CliError) expect(err.exitCode).toBe(EXIT.USAGE);
    else expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  return '(accepted)';
}

describe('one error format for every reader', () => {
  it.each([
    [{ BACKFILL_STORE: 'pg' }, 'invalid configuration: BACKFILL_STORE must be "file" or "postgres"'],
    [
      { BACKFILL_STORE: 'postgres' },
      'invalid configuration: BACKFILL_STORE is "postgres" but BACKFILL_DATABASE_URL is not set',
    ],
    [
      { BACKFILL_DATABASE_URL: 'mysql://user:s3cret-pw@h/db' },
      'invalid configuration: BACKFILL_DATABASE_URL must be a postgres:// or postgresql:// URL',
    ],
  ])('%j: the worker, report and purge say the same, without the value', (env, expected) => {
    const worker = problem(() => loadConfig({ ...WORKER, ...env }));
    const report = problem(() => loadAuditEnv(env));
    const purge = problem(() => loadSettings(env, STORE_SETTINGS));
    expect(worker).toBe(expected);
    expect(report).toBe(expected);
    expect(purge).toBe(expected);
    expect(worker).not.toContain('s3cret');
  });

  it('a client command names a bad Temporal or codec variable as the worker does', () => {
    const env = { BACKFILL_CODEC_KEY: 'not-a-key', TEMPORAL_TLS: 'maybe' };
    const client = problem(() => loadCliEnv(env));
    expect(client).toBe(problem(() => loadConfig({ ...WORKER, ...env })));
    expect(client).toMatch(/^invalid configuration: .*BACKFILL_CODEC_KEY/);
  });

  it('a client never needs the worker secrets', () => {
    expect(loadCliEnv({}).TEMPORAL_ADDRESS).toBe('localhost:7233');
  });
});

describe('one store factory: the same environment, the same store', () => {
  it.each([
    [{}, 'file', 'file'],
    [{ BACKFILL_AUDIT_STORE: 'postgres', BACKFILL_DATABASE_URL: DB }, 'postgres', 'file'],
    [{ BACKFILL_STORE: 'postgres', BACKFILL_DATABASE_URL: DB }, 'postgres', 'postgres'],
  ])('%j: audit in %s, shared state in %s (worker, report and purge alike)', async (env, audit, shared) => {
    const worker = openStores(loadConfig({ ...WORKER, ...env }), { applicationName: 't', maxConnections: 1 });
    const cli = openStores(loadSettings(env, STORE_SETTINGS), { applicationName: 't', maxConnections: 1 });
    const report = openAuditReader(loadAuditEnv(env));
    expect(worker.kind).toEqual({ audit, shared });
    expect(cli.kind).toEqual({ audit, shared });
    expect(report.kind).toBe(audit);
    await Promise.all([worker.close(), cli.close(), report.close()]);
  });
});
