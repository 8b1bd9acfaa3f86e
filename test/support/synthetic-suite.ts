// The fixture that test files over synthetic members share: a Temporal dev server, a temporary directory holding the
// source (`members.csv`, n synthetic members) and, when asked, a throwaway PostgreSQL and an empty data directory for
// the workers. Started in the file's beforeAll, stopped and removed in its afterAll; each test starts its own stack.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { DEFAULT_SYNTHETIC_SEED, writeSyntheticCsv } from '../../dev/synthetic';
import type { DevServer } from '../../dev/temporal-cli';
import { startTestPostgres, type TestPostgres } from './postgres';
import { startTestServer } from './stack';

export interface SyntheticSuiteOptions {
  /** Synthetic members in `members.csv`. */
  members: number;
  seed?: number;
  /** The temporary directory's name prefix, under `parent`. */
  prefix: string;
  /**
   * Where the temporary directory goes (default: the system's temp dir). `/var/tmp` for a worker in a mount namespace
   * of its own (a private /tmp, a tmpfs), which must still see the source there.
   */
  parent?: string;
  /** Start a throwaway PostgreSQL too. */
  postgres?: boolean;
  /** Make an empty `data` directory beside the source (a worker's BACKFILL_DATA_DIR of the test's own). */
  dataDir?: boolean;
  /** false: start nothing (a file whose tests do not run here). Default true. */
  enabled?: boolean;
}

export interface SyntheticSuite {
  readonly server: DevServer;
  /** Throws unless started with `postgres`. */
  readonly pg: TestPostgres;
  /** The temporary directory: the source, and anything else a test writes (worker logs). */
  readonly dir: string;
  /** `members.csv` in `dir`. */
  readonly csv: string;
  /** `data` in `dir` (with `dataDir`). */
  readonly dataDir: string;
}

/** Registers the file's beforeAll and afterAll; what they start is read from the returned object once they ran. */
export function syntheticSuite(o: SyntheticSuiteOptions): SyntheticSuite {
  let server: DevServer | undefined;
  let pg: TestPostgres | undefined;
  let dir: string | undefined;

  beforeAll(async () => {
    if (o.enabled === false) return;
    dir = await mkdtemp(path.join(o.parent ?? os.tmpdir(), o.prefix));
    if (o.dataDir) await mkdir(path.join(dir, 'data'));
    const csv = writeSyntheticCsv(path.join(dir, 'members.csv'), o.members, o.seed ?? DEFAULT_SYNTHETIC_SEED);
    [server, pg] = await Promise.all([startTestServer(), o.postgres ? startTestPostgres() : undefined, csv]);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined)
      throw new Error(`syntheticSuite: ${what} is not started (before beforeAll, or not asked for)`);
    return value;
  };
  return {
    get server() {
      return started(server, 'the dev server');
    },
    get pg() {
      return started(pg, 'PostgreSQL');
    },
    get dir() {
      return started(dir, 'the temporary directory');
    },
    get csv() {
      return path.join(started(dir, 'the temporary directory'), 'members.csv');
    },
    get dataDir() {
      if (!o.dataDir) throw new Error('syntheticSuite: no data directory asked for (dataDir: true)');
      return path.join(started(dir, 'the temporary directory'), 'data');
    },
  };
}
