import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, escapeIdentifier, Pool } from 'pg';
import { freePort } from '../../dev/temporal-cli';

// A real, throwaway PostgreSQL for the tests: Debian's server binaries (installed by npm test when missing:
// test/support/prerequisites.ts), a fresh cluster in a temp dir, listening on 127.0.0.1 and a free port only, trust
// auth, no fsync. Stopped and deleted by stop(), and by an exit hook if a test run dies before its afterAll.

const run = promisify(execFile);
const PG_ROOT = '/usr/lib/postgresql';

export interface TestPostgres {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (trust auth: no password). */
  url(database?: string): string;
  /** A new, empty database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** A new pool on `database` (default "postgres"), ended by stop(). */
  pool(database?: string): Pool;
  /**
   * The one pool on `database` that helpers reading it again and again share (a poll: postgresAuditEntries), made
   * at its first use, ended by stop(). A new pool per read keeps its connection open, idle, for pg's 10 s
   * idleTimeoutMillis: polled every 100 ms, shared-nothing.test held 44 such connections at once.
   */
  sharedPool(database?: string): Pool;
  /** One statement on `database`, on a short-lived connection. */
  query(sql: string, values?: unknown[], database?: string): Promise<Record<string, unknown>[]>;
  /**
   * Stops the server abruptly (`-m immediate`, like a crash) and starts it again on the same port and data, after
   * `downMs` (default: at once).
   */
  restart(downMs?: number): Promise<void>;
  /**
   * SIGKILLs the server (each process of its postmaster, stopped meanwhile, then the postmaster, by the ids this
   * cluster's postmaster.pid and /proc give) with no shutdown at all, and starts it again after `downMs`: it recovers from its write-ahead log.
   */
  kill(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres. Fails (never skips) without. */
export function findPostgresBin(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const bin = path.join(PG_ROOT, version, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((tool) => existsSync(path.join(bin, tool)))) return bin;
  }
  throw new Error(
    `PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under ${PG_ROOT}/<version>/bin: ` +
      `npm test installs them as root from Debian's packages (apt-get install -y postgresql), or install that package`,
  );
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = findPostgresBin();
  // initdb and postgres refuse to run as root: as root, run them as the package's `postgres` user.
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const command = (tool: string, args: string[]): [string, string[]] =>
    owner ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args];

  const dir = await mkdtemp(path.join(os.tmpdir(), 'backfill-pg-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const pgCtl = (args: string[], timeout: number) => run(...command('pg_ctl', ['-D', data, ...args]), { timeout });

  const stopNow = () => {
    // Synchronous on purpose: this also runs from the process 'exit' hook, where nothing async can.
    const [cmd, args] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 15_000 });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);

  let port = 0;
  let started = '';
  try {
    await run(
      ...command('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']),
      { timeout: 60_000 },
    );
    // A free port can be taken between the probe and the bind: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const settings = [
        `-c listen_addresses=127.0.0.1`,
        `-c port=${port}`,
        `-c unix_socket_directories=${dir}`,
        `-c fsync=off`,
        `-c synchronous_commit=off`,
        `-c full_page_writes=off`,
        `-c max_connections=60`,
        `-c shared_buffers=32MB`,
      ].join(' ');
      try {
        await pgCtl(['-l', log, '-o', settings, '-w', '-t', '30', 'start'], 40_000);
        started = settings;
        break;
      } catch (error) {
        if (attempt >= 3) throw new Error(`PostgreSQL did not start: ${lastLines(log)}`, { cause: error });
      }
    }
  } catch (error) {
    process.removeListener('exit', stopNow);
    stopNow();
    throw error;
  }

  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const pools: Pool[] = [];
  const shared = new Map<string, Pool>();
  const pool = (database?: string) => {
    // Small: the contract tests make a pool per test, against a cluster allowing 60 connections (shared-nothing.test,
    // two workers of 10 each, peaks at 14 since its polls share one pool: sharedPool).
    const made = new Pool({ connectionString: url(database), max: 4 });
    made.on('error', () => undefined); // the server going away at stop() is expected
    pools.push(made);
    return made;
  };
  const query = async (sql: string, values: unknown[] = [], database?: string) => {
    const client = new Client({ connectionString: url(database) });
    await client.connect();
    try {
      return (await client.query(sql, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };

  return {
    port,
    url,
    async createDatabase(name) {
      await query(`CREATE DATABASE ${escapeIdentifier(name)}`);
      return url(name);
    },
    pool,
    sharedPool(database = 'postgres') {
      let made = shared.get(database);
      if (!made) shared.set(database, (made = pool(database)));
      return made;
    },
    query,
    async restart(downMs = 0) {
      await pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop'], 40_000);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await pgCtl(['-l', log, '-o', started, '-w', '-t', '30', 'start'], 40_000);
    },
    async kill(downMs) {
      const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(postmaster, 'SIGSTOP'); // it forks no more while its processes are listed and killed
      for (const pid of childrenOf(postmaster)) killQuietly(pid);
      process.kill(postmaster, 'SIGKILL');
      await new Promise((r) => setTimeout(r, downMs));
      await pgCtl(['-l', log, '-o', started, '-w', '-t', '60', 'start'], 70_000);
    },
    async stop() {
      shared.clear();
      await Promise.all(pools.splice(0).map((p) => p.end().catch(() => undefined)));
      await pgCtl(['-m', 'fast', '-w', '-t', '30', 'stop'], 40_000).catch(() => undefined);
      process.removeListener('exit', stopNow);
      stopNow(); // an "immediate" stop of a stopped server is a no-op; this removes the directory
    },
  };
}

/** The ids of the processes whose parent is `parent` (from /proc). */
function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function postgresUser(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error(
      "running as root but there is no 'postgres' user to run the test cluster as: .ci/run installs Debian's postgresql package, which creates it",
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function lastLines(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no server log)';
  }
}
