// The real worker as a child process of the benchmark (modelled on test/support/worker-process.ts), in one of
// two runtimes:
//   tsx  - `tsx src/worker.ts`, what `npm run worker` runs (tsx's launcher process + the worker process);
//   node - `node dist/src/worker.js`, what the Dockerfile runs, from a build of the current tree made by
//          buildWorkerDist() into the benchmark's work directory (so a stale ./dist is never measured);
//   node-prebundled - the same build, but the worker is given a workflow bundle made ahead of time
//          (createBackfillWorker's `workflowBundle` option) instead of bundling with webpack at start-up: what
//          building the bundle into the image would save. The entry is a few lines written by writePrebundledEntry().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { processTree } from './measure';

const ROOT = path.resolve(__dirname, '..');
export const WORKER_RUNNING = /Worker state changed[^}]*RUNNING/;

export type WorkerRuntime = 'tsx' | 'node' | 'node-prebundled';

/**
 * Compiles the project (tsconfig.build.json) into `outDir` and links node_modules next to it. Type errors do
 * not stop the emit; they are returned so the report can say the build was not clean.
 */
export function buildWorkerDist(outDir: string): { entry: string; typeErrors: string[] } {
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', outDir, '--sourceMap', 'false', '--declaration', 'false'], { cwd: ROOT, encoding: 'utf8' });
  const entry = path.join(outDir, 'src', 'worker.js');
  if (!existsSync(entry)) throw new Error(`building the worker failed:\n${r.stdout}${r.stderr}`);
  if (!existsSync(path.join(outDir, 'node_modules'))) symlinkSync(path.join(ROOT, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  const typeErrors = `${r.stdout}`.split('\n').filter((l) => /error TS\d+/.test(l));
  return { entry, typeErrors };
}

/** Bundles the built workflows (as the worker would at start) and writes an entry that uses that bundle. */
export async function writePrebundledEntry(outDir: string): Promise<string> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const noop = () => undefined;
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(outDir, 'workflows', 'index.js'),
    logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop },
  });
  const codePath = path.join(outDir, 'workflow-bundle.js');
  writeFileSync(codePath, bundle.code);
  const entry = path.join(outDir, 'bench-prebundled-worker.js');
  writeFileSync(
    entry,
    `// Written by bench/worker-child.ts: src/worker.ts's job, with the workflow bundle built ahead of time.
const { createBackfillWorker } = require('./src/worker-setup');
const { loadConfig } = require('./src/config');
(async () => {
  const backfill = await createBackfillWorker(loadConfig(), { workflowBundle: { codePath: ${JSON.stringify(codePath)} } });
  const stop = () => backfill.worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await backfill.run();
  await backfill.close();
})().catch((err) => {
  console.error('worker failed: ' + (err && err.message));
  process.exit(1);
});
`,
  );
  return entry;
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
  /** For runtimes node and node-prebundled: the entry from buildWorkerDist or writePrebundledEntry. */
  distEntry?: string;
  env: Record<string, string>;
  /** Options for node itself, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
  logFile: string;
  readyTimeoutMs?: number;
}): Promise<WorkerChild> {
  const nodeArgs = o.nodeArgs ?? [];
  const [cmd, args] =
    o.runtime === 'tsx'
      ? [path.join(ROOT, 'node_modules', '.bin', 'tsx'), [...nodeArgs, path.join(ROOT, 'src', 'worker.ts')]]
      : [process.execPath, [...nodeArgs, o.distEntry ?? '']];
  const fd = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...o.env },
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
