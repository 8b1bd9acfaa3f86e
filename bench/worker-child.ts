// The real worker as a child process of the benchmark (modelled on test/support/worker-process.ts), in one of
// two runtimes:
//   node - what ships: `npm run build` (tsc + the workflow bundle) of the current tree into the benchmark's work
//          directory (so a stale ./dist is never measured), started with exactly the environment and node
//          options of package.json's `start` script (the Dockerfile's CMD is kept equal to it by a unit test);
//   tsx  - `tsx src/worker.ts`, what `npm run worker` runs for development (tsx's launcher + the worker).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { shippedWorkerCommand } from '../dev/shipped-worker-command';
import { processTree } from './measure';

const ROOT = path.resolve(__dirname, '..');
export const WORKER_RUNNING = /Worker state changed[^}]*RUNNING/;

export type WorkerRuntime = 'node' | 'tsx';

/**
 * Does what `npm run build` does (tsconfig.build.json, then the workflow bundle), into `outDir`, and links
 * node_modules next to it. Type errors do not stop the emit; they are returned so the report can say the
 * build was not clean.
 */
export function buildWorkerDist(outDir: string): { entry: string; typeErrors: string[] } {
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(
    tsc,
    [
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      outDir,
      '--sourceMap',
      'false',
      '--declaration',
      'false',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const entry = path.join(outDir, path.relative('dist', shippedWorkerCommand().entry));
  if (!existsSync(entry)) throw new Error(`building the worker failed:\n${r.stdout}${r.stderr}`);
  if (!existsSync(path.join(outDir, 'node_modules')))
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  const bundle = spawnSync(process.execPath, [path.join(outDir, 'src', 'build-workflow-bundle.js')], {
    cwd: outDir,
    encoding: 'utf8',
  });
  if (bundle.status !== 0) throw new Error(`building the workflow bundle failed:\n${bundle.stdout}${bundle.stderr}`);
  const typeErrors = `${r.stdout}`.split('\n').filter((l) => /error TS\d+/.test(l));
  return { entry, typeErrors };
}

/** The credentials a bench tool gives both its simulator and receiver and its workers. */
export interface HarnessCredentials {
  accessKey: string;
  accessSecret: string;
  webhookToken: string;
}

/** The environment a worker needs to reach the harness (simulator, receiver) and Temporal, with its own data dir. */
export function harnessWorkerEnv(
  at: { simulator: { url: string }; receiver: { url: string }; server: { address: string }; dataDir: string },
  credentials: HarnessCredentials,
): Record<string, string> {
  return {
    CHANNEL_API_URL: at.simulator.url,
    CHANNEL_ACCESS_KEY: credentials.accessKey,
    CHANNEL_ACCESS_SECRET: credentials.accessSecret,
    WEBHOOK_URL: at.receiver.url,
    WEBHOOK_TOKEN: credentials.webhookToken,
    TEMPORAL_ADDRESS: at.server.address,
    BACKFILL_DATA_DIR: at.dataDir,
  };
}

export interface WorkerChild {
  /** The process group leader (tsx's launcher, or the worker itself under node). */
  readonly pid: number | undefined;
  readonly logFile: string;
  log(): string;
  /** SIGTERM to the worker process itself (a graceful shutdown that lets --cpu-prof write); SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export async function startWorkerChild(o: {
  runtime: WorkerRuntime;
  /** For runtime node: the entry from buildWorkerDist. */
  distEntry?: string;
  env: Record<string, string>;
  /** Options for node itself, e.g. --cpu-prof (not allowed in NODE_OPTIONS); runtime node adds the shipped ones first. */
  nodeArgs?: string[];
  logFile: string;
  readyTimeoutMs?: number;
}): Promise<WorkerChild> {
  const shipped = o.runtime === 'node' ? shippedWorkerCommand() : { env: {}, nodeArgs: [] };
  // Options given for this run come after the shipped ones: for V8's flags the last one wins.
  const nodeArgs = [...shipped.nodeArgs, ...(o.nodeArgs ?? [])];
  const [cmd, args] =
    o.runtime === 'tsx'
      ? [path.join(ROOT, 'node_modules', '.bin', 'tsx'), [...nodeArgs, path.join(ROOT, 'src', 'worker.ts')]]
      : [process.execPath, [...nodeArgs, o.distEntry ?? '']];
  const fd = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...shipped.env, ...o.env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const pid = child.pid;
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (pid) process.kill(-pid, signal);
    } catch {
      // gone
    }
  };
  process.once('exit', () => killGroup('SIGKILL'));
  const log = () => {
    try {
      return readFileSync(o.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 180_000);
  while (!WORKER_RUNNING.test(log())) {
    if (exited) throw new Error(`the worker exited before polling; its output:\n${log()}`);
    if (Date.now() > deadline) {
      killGroup('SIGKILL');
      throw new Error(`the worker did not start polling in time; its output:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid,
    logFile: o.logFile,
    log,
    async stop(graceMs = 30_000) {
      if (exited || !pid) return;
      // Under tsx the worker is the launcher's child; signalling only it avoids a second SIGTERM relayed by the
      // launcher hitting the worker after its own once-handler is spent.
      const inner = processTree(pid).filter((p) => p !== pid);
      const target = o.runtime === 'tsx' && inner.length > 0 ? Math.min(...inner) : pid;
      try {
        process.kill(target, 'SIGTERM');
      } catch {
        // gone
      }
      const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
      killGroup('SIGKILL'); // anything left in the group (esbuild's service)
    },
  };
}
