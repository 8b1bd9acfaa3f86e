// The real worker entry (`npm run worker` = `tsx src/worker.ts`) as a child process that a test can SIGKILL
// and start again, like a crashed container. Its stdout and stderr go to one log file (appended across starts).
//
// The local tsx binary is run directly rather than through `npx`/`npm run`: same entry, same code, but no
// npm process in between (and no npm start-up cost on every restart). tsx itself runs the script in a child
// node process, so the worker is started as its own process group and killed as a group: SIGKILL reaches the
// process that actually holds the Temporal connection, not only tsx's launcher.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const ENTRY = path.join(ROOT, 'src', 'worker.ts');

/**
 * What the SDK logs once the worker is polling its task queue. Bundling the workflow code comes before
 * it, which takes several seconds on a busy machine.
 */
export const WORKER_RUNNING = /Worker state changed[^}]*RUNNING/;

export interface WorkerProcessOptions {
  /** The worker's environment (e.g. `stack.env` from startStack({worker:false})); PATH and HOME are added. */
  env: Record<string, string>;
  /** stdout and stderr of every start are appended here. */
  logFile: string;
  /** How long a start may take to reach WORKER_RUNNING. Default 90 s. */
  readyTimeoutMs?: number;
  /** Runs the worker through another command (e.g. `unshare -m` for a private /tmp): given tsx and its args. */
  wrap?: (command: string, args: string[]) => [string, string[]];
}

export interface WorkerProcess {
  readonly logFile: string;
  /** Process id of the current process group leader, if one runs. */
  readonly pid: number | undefined;
  /** How many times the worker was started. */
  readonly starts: number;
  /** How many times it was killed with SIGKILL. */
  readonly kills: number;
  /** Spawns the worker and resolves once it logged WORKER_RUNNING (rejects, with its log, if it exits first). */
  start(): Promise<void>;
  /** SIGKILL to the whole process group, no grace; resolves once the process is gone. */
  kill(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  /** SIGTERM (the worker shuts down gracefully), SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** Everything the worker wrote so far, all starts. */
  log(): Promise<string>;
}

// Children that are still running when the test process exits (a failed assertion, a timeout) are killed
// with it: a leftover worker would keep polling a dev server that is gone.
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function workerProcess(o: WorkerProcessOptions): WorkerProcess {
  const readyTimeoutMs = o.readyTimeoutMs ?? 90_000;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let starts = 0;
  let kills = 0;

  const fileSize = async () => (await stat(o.logFile).catch(() => undefined))?.size ?? 0;

  async function start(): Promise<void> {
    if (child) throw new Error('worker process already running');
    const from = await fileSize();
    const fd = openSync(o.logFile, 'a');
    let proc: ChildProcess;
    try {
      const [command, args] = o.wrap ? o.wrap(TSX, [ENTRY]) : [TSX, [ENTRY]];
      proc = spawn(command, args, {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...o.env },
        stdio: ['ignore', fd, fd],
        detached: true, // its own process group, so kill() reaches tsx's node child too
      });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    let spawnError: Error | undefined;
    proc.once('error', (err) => {
      spawnError = err;
    });
    starts += 1;
    const pid = proc.pid;
    if (pid === undefined) {
      await new Promise((r) => setImmediate(r));
      throw new Error(`the worker process did not start: ${spawnError?.message ?? 'no pid'}`);
    }
    child = proc;
    live.add(pid);
    let exitInfo: string | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = `exit code ${code}, signal ${signal}`;
        live.delete(pid);
        if (child === proc) child = undefined;
        resolve();
      });
    });

    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const text = await readFrom(o.logFile, from);
      if (WORKER_RUNNING.test(text)) return;
      if (exitInfo !== undefined)
        throw new Error(`the worker exited before polling (${exitInfo}); its output:\n${text}`);
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`the worker did not start polling within ${readyTimeoutMs} ms; its output:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function signalGroup(signal: NodeJS.Signals): Promise<boolean> {
    const pid = child?.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false; // already gone
    }
  }

  async function kill(): Promise<void> {
    if (await signalGroup('SIGKILL')) kills += 1;
    await exited;
  }

  return {
    logFile: o.logFile,
    get pid() {
      return child?.pid;
    },
    get starts() {
      return starts;
    },
    get kills() {
      return kills;
    },
    start,
    kill,
    async restart() {
      await kill();
      await start();
    },
    async stop(graceMs = 15_000) {
      if (!(await signalGroup('SIGTERM'))) return;
      const timer = setTimeout(() => void signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    log: () => readFrom(o.logFile, 0),
  };
}

async function readFrom(file: string, offset: number): Promise<string> {
  const buffer = await readFile(file).catch(() => Buffer.alloc(0));
  return buffer.subarray(offset).toString('utf8');
}
