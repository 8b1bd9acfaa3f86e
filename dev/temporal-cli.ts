import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

// Finds or builds the official Temporal CLI (server + Web UI in one binary) and runs its dev server.
// Used by the demo and the tests; users with internet may instead let the SDK download the CLI.

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** Outside the clone, so CI runs and later sessions reuse one build. */
export const CLI_CACHE_DIR =
  process.env.WEBHOOK_BACKFILL_CACHE ?? path.join(os.homedir(), '.cache', 'webhook-backfill', 'bin');

export interface FoundCli {
  path: string;
  how: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** $TEMPORAL_CLI, then the cache, then PATH; with `build`, `go install`s the pinned version into the cache. */
export function findTemporalCli(opts: { build?: boolean; log?: (line: string) => void } = {}): FoundCli | undefined {
  const log = opts.log ?? (() => undefined);
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI points to ${fromEnv}, which does not exist`);
    return { path: fromEnv, how: 'from $TEMPORAL_CLI' };
  }
  const cached = path.join(CLI_CACHE_DIR, 'temporal');
  if (existsSync(cached)) return { path: cached, how: `from the cache (${CLI_CACHE_DIR})` };
  const found = onPath('temporal');
  if (found) return { path: found, how: 'from PATH' };
  if (!opts.build) return undefined;
  if (!onPath('go')) return undefined;
  log(
    `building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${CLI_CACHE_DIR} (first time only, takes a few minutes)...`,
  );
  mkdirSync(CLI_CACHE_DIR, { recursive: true });
  const built = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
    env: { ...process.env, GOBIN: CLI_CACHE_DIR },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (built.status === 0 && existsSync(cached)) return { path: cached, how: `built with Go into ${CLI_CACHE_DIR}` };
  log('the Go build of the Temporal CLI failed');
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port` right now. */
export function isListening(port: number): Promise<boolean> {
  return waitForPort(port, 0).then(
    () => true,
    () => false,
  );
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface DevServerOptions {
  cli: string;
  port?: number;
  uiPort?: number;
  /** Persistent SQLite store: the server can be stopped and started again without losing runs. */
  dbFile?: string;
  headless?: boolean;
  logFile?: string;
}

export interface DevServer {
  address: string;
  port: number;
  uiUrl: string | undefined;
  /** The server's Prometheus metrics (its `action` counter is what the benchmark reads Temporal actions from). */
  metricsUrl: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

/** Attempts with fresh ports when the server exits before it listens (a port taken between choosing and binding). */
const START_ATTEMPTS = 3;

export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(o);
    } catch (err) {
      // Ports given by the caller are not ours to change; a server that never exited is not a port problem.
      const retry = err instanceof DevServerExited && o.port === undefined && o.uiPort === undefined;
      if (!retry || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

/** The dev server process ended before it listened on its port. */
class DevServerExited extends Error {}

async function startDevServerOnce(o: DevServerOptions): Promise<DevServer> {
  const port = o.port ?? (await freePort());
  const uiPort = o.headless ? undefined : (o.uiPort ?? (await freePort()));
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'];
  const metricsPort = await freePort();
  args.push('--http-port', String(await freePort()), '--metrics-port', String(metricsPort));
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  // Registered at start so runs can be filtered in the Web UI by status and counts.
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  const out = o.logFile ? openSync(o.logFile, 'a') : 'pipe';
  const child = spawn(o.cli, args, { stdio: ['ignore', out, out] });
  // Without a log file, the last of what the server printed is kept for the error if it does not start.
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => {
      exited = true;
      process.removeListener('exit', killOnExit);
      reject(
        new DevServerExited(
          `the Temporal dev server exited (${signal ?? `code ${code}`}) before listening on 127.0.0.1:${port}` +
            (tail.trim() ? `: ${tail.trim()}` : ''),
        ),
      );
    }),
  );
  exit.catch(() => undefined); // after a successful start the rejection is only the server's end
  // A server must not outlive the process that started it (a crash, a broken pipe, Ctrl-C mid-start).
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  try {
    await Promise.race([waitForPort(port, 60_000), exit]);
    if (uiPort) await Promise.race([waitForPort(uiPort, 30_000), exit]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  // What it prints from now on is not read: stop collecting (the pipes are still drained).
  child.stdout?.removeListener('data', keep);
  child.stderr?.removeListener('data', keep);
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    address: `127.0.0.1:${port}`,
    port,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    process: child,
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
