import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { freePort } from '../../dev/temporal-cli';

// A real, throwaway MariaDB for the tests: Debian's server (mariadbd, mariadb-install-db; installed by npm test), a
// fresh data directory in a temp dir, listening on 127.0.0.1 and a free port only, root without a password, no
// binary log, no flushing at commit. Stopped and deleted by stop(), and by an exit hook if a test run dies before
// its afterAll. The server's own character set is left at its default (latin1), as on many customers' servers: the
// test databases are created utf8mb4, so anything lost on the way shows.

const run = promisify(execFile);
const SERVER = ['/usr/sbin/mariadbd', '/usr/bin/mariadbd'];
const INSTALL_DB = ['/usr/bin/mariadb-install-db', '/usr/sbin/mariadb-install-db'];

export interface TestMariaDb {
  port: number;
  /** `mysql://root@127.0.0.1:<port>/<database>` (no password). */
  url(database?: string): string;
  /** A new, empty utf8mb4 database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Statements on `database`, on a short-lived connection (multiple statements allowed: test set-up only). */
  query(sql: string, values?: unknown[], database?: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/** mariadbd and mariadb-install-db from Debian's mariadb-server package. Fails (never skips) without. */
export function findMariaDb(): { server: string; installDb: string } {
  const server = SERVER.find((p) => existsSync(p));
  const installDb = INSTALL_DB.find((p) => existsSync(p));
  if (server && installDb) return { server, installDb };
  throw new Error(
    `MariaDB server binaries (mariadbd, mariadb-install-db) not found: npm test installs them as root from ` +
      `Debian's packages (apt-get install -y mariadb-server), or install that package`,
  );
}

export async function startTestMariaDb(): Promise<TestMariaDb> {
  const { server, installDb } = findMariaDb();
  // mariadbd refuses to run as root unless told which user to be: as root it stays root (a temp dir it owns).
  const user = os.userInfo().username;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'backfill-mariadb-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  let child: ChildProcess | undefined;

  const stopNow = () => {
    // Synchronous on purpose: this also runs from the process 'exit' hook, where nothing async can.
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);

  let port = 0;
  try {
    await run(
      installDb,
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--user=${user}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
      ],
      { timeout: 120_000 },
    );
    // A free port can be taken between the probe and the bind: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      child = spawn(
        server,
        [
          '--no-defaults',
          `--datadir=${data}`,
          `--user=${user}`,
          '--bind-address=127.0.0.1',
          `--port=${port}`,
          `--socket=${path.join(dir, 'mariadb.sock')}`,
          `--pid-file=${path.join(dir, 'mariadb.pid')}`,
          `--log-error=${log}`,
          '--skip-name-resolve',
          '--skip-log-bin',
          '--innodb-flush-log-at-trx-commit=0',
          '--innodb-buffer-pool-size=32M',
          '--max-connections=60',
        ],
        { stdio: 'ignore' },
      );
      if (await ready(child, port)) break;
      if (child.exitCode === null) child.kill('SIGKILL');
      if (attempt >= 3) throw new Error(`MariaDB did not start: ${lastLines(log)}`);
    }
  } catch (error) {
    process.removeListener('exit', stopNow);
    stopNow();
    throw error;
  }

  const url = (database = '') => `mysql://root@127.0.0.1:${port}/${database}`;
  const query = async (sql: string, values: unknown[] = [], database?: string) => {
    const connection = await createConnection({
      uri: url(database),
      charset: 'utf8mb4_unicode_ci',
      multipleStatements: true,
    });
    try {
      const [rows] = await connection.query(sql, values);
      return rows as Record<string, unknown>[];
    } finally {
      await connection.end();
    }
  };

  return {
    port,
    url,
    async createDatabase(name) {
      await query(`CREATE DATABASE \`${name.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      return url(name);
    },
    query,
    async stop() {
      const exited =
        child && child.exitCode === null ? new Promise((resolve) => child!.once('exit', resolve)) : undefined;
      child?.kill('SIGTERM');
      // A clean shutdown takes a moment; after 30 s the exit hook's SIGKILL does it.
      if (exited) await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}

/** Waits (bounded) until the server answers on `port`, or has exited (a port taken: try another). */
async function ready(child: ChildProcess, port: number): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 });
      await connection.end();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return false;
}

function lastLines(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no server log)';
  }
}
