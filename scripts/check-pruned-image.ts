// `npx tsx scripts/check-pruned-image.ts`: what `docker build` and `docker run` of the Dockerfile do, without a
// Docker engine (none runs in CI). The Dockerfile itself is read and followed:
//   build stage  its COPY lines (the tracked files, into a temporary directory) and its RUN lines in order
//                (npm ci, npm run build, npm prune --omit=dev), with npm told to prefer its local cache;
//   final stage  its COPY --from=build and COPY lines into a second directory, its ENV and its CMD.
// The image's worker then runs from that directory, with nothing else on its module path, against a real
// Temporal dev server, the Channel Talk simulator and the webhook receiver, and must complete a small backfill.
// So whatever the image needs but the build prunes (a dev dependency required by dist/) fails here, in CI,
// rather than in a user's `docker compose up`. Exit 0 and one "pruned-image check: passed" line, or exit 1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { builtinModules, createRequire } from 'node:module';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startChannelSimulator } from '../dev/simulator/channel-simulator';
import { startWebhookReceiver } from '../dev/simulator/webhook-receiver';
import { findTemporalCli, startDevServer } from '../dev/temporal-cli';
import type { ChannelUser } from '../src/domain/types';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../workflows/definitions';

const ROOT = path.resolve(__dirname, '..');
const ROWS = 20;
const ACCESS_KEY = 'pruned-check-key';
const ACCESS_SECRET = 'pruned-check-secret';
/** What the Temporal SDK logs once the worker polls its task queue. */
const WORKER_RUNNING = /Worker state changed[^}]*RUNNING/;

interface Instruction {
  op: string;
  args: string;
}
interface Dockerfile {
  build: Instruction[];
  final: Instruction[];
}

/** The Dockerfile's instructions per stage (comments dropped, `\` continuations joined). */
function readDockerfile(): Dockerfile {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') stages.push([]);
    stages.at(-1)?.push({ op: op!.toUpperCase(), args: args! });
  }
  if (stages.length !== 2)
    throw new Error(`Dockerfile: expected a build stage and a final stage, found ${stages.length} stages`);
  return { build: stages[0]!, final: stages[1]! };
}

/** `COPY a b ./dest` or `COPY ["a", "./dest"]`: sources and destination; --from=… and --chown=… flags apart. */
function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** Inside the stage's WORKDIR (/app), `./x` and `/app/x` are the same place: `dir/x`. */
function inStage(dir: string, p: string): string {
  return path.join(dir, p.replace(/^\/app\/?/, ''));
}

function run(command: string, cwd: string, env: NodeJS.ProcessEnv): void {
  const started = Date.now();
  const r = spawnSync('sh', ['-c', command], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(
      `RUN ${command} failed (exit ${r.status}):\n${(r.stdout + r.stderr).split('\n').slice(-40).join('\n')}`,
    );
  console.log(`   RUN ${command} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** The build stage, in `dir`: COPY from the tracked files of the checkout, RUN as written. */
function buildStage(instructions: Instruction[], dir: string): void {
  const tracked = new Set(
    spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter(Boolean),
  );
  if (tracked.size === 0) throw new Error('git ls-files listed nothing: run this from a git checkout');
  // npm reads npm_config_* like its flags: the cache is used without revalidating what it holds.
  const env = {
    ...process.env,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  for (const { op, args } of instructions) {
    if (op === 'COPY') {
      const { from, sources, dest } = copyArgs(args);
      if (from) throw new Error(`build stage: COPY --from=${from} is not supported here`);
      for (const source of sources) {
        const files = [...tracked].filter((f) => f === source || f.startsWith(`${source.replace(/\/$/, '')}/`));
        if (files.length === 0)
          throw new Error(`Dockerfile COPY ${source}: no tracked file there (the image would not build)`);
        for (const f of files) {
          // Docker's rules: a file goes to dest (or into it, given a trailing /); a directory's contents go into dest.
          const to =
            f === source
              ? dest.endsWith('/')
                ? path.join(inStage(dir, dest), path.basename(f))
                : inStage(dir, dest)
              : path.join(inStage(dir, dest), path.relative(source, f));
          mkdirSync(path.dirname(to), { recursive: true });
          cpSync(path.join(ROOT, f), to);
        }
      }
    } else if (op === 'RUN') run(args, dir, env);
  }
}

/** The final stage's files in `dir` (from the build stage and the context), and its ENV and CMD. */
function finalStage(
  instructions: Instruction[],
  buildDir: string,
  dir: string,
): { env: Record<string, string>; cmd: string[] } {
  const env: Record<string, string> = {};
  let cmd: string[] | undefined;
  for (const { op, args } of instructions) {
    if (op === 'COPY') {
      const { from, sources, dest } = copyArgs(args);
      for (const source of sources) {
        const to = dest.endsWith('/') ? path.join(inStage(dir, dest), path.basename(source)) : inStage(dir, dest);
        mkdirSync(path.dirname(to), { recursive: true });
        // From the build stage: moved (that directory is thrown away); from the context: copied.
        if (from === 'build') renameSync(inStage(buildDir, source), to);
        else if (from) throw new Error(`final stage: COPY --from=${from} is not supported here`);
        else cpSync(path.join(ROOT, source), to, { recursive: true });
      }
    } else if (op === 'ENV') {
      for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
        env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    } else if (op === 'CMD') {
      cmd = JSON.parse(args) as string[];
    }
    // RUN (mkdir/chown for the node user) and USER are about the container's file system and user: not needed here.
  }
  if (!cmd || cmd[0] !== 'node')
    throw new Error(`Dockerfile: the final CMD must run node in exec form, got ${JSON.stringify(cmd)}`);
  return { env, cmd };
}

/**
 * Every package that a compiled file of the image requires, resolved from that file as node would: a module
 * the worker does not load today (the demo, a CLI command) must not need a pruned dev dependency either.
 */
function unresolvedRequires(imageDir: string): string[] {
  const builtins = new Set(builtinModules);
  const problems: string[] = [];
  const dist = path.join(imageDir, 'dist');
  for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    // The workflow bundle is self-contained (webpack); its text holds no require of a package.
    if (!entry.isFile() || !entry.name.endsWith('.js') || file === path.join(dist, 'workflow-bundle.js')) continue;
    const req = createRequire(file);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/\brequire\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
      if (spec!.startsWith('node:') || builtins.has(spec!)) continue;
      try {
        req.resolve(spec!);
      } catch {
        problems.push(
          `${path.relative(imageDir, file)} requires ${spec}, which the pruned node_modules does not have (a devDependency?)`,
        );
      }
    }
  }
  return problems;
}

async function main(): Promise<void> {
  const started = Date.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pruned-image-'));
  const buildDir = path.join(tmp, 'build');
  const imageDir = path.join(tmp, 'image');
  const dataDir = path.join(tmp, 'data'); // the image's /data: the members file
  const stateDir = path.join(tmp, 'state'); // the image's /var/lib/webhook-backfill
  for (const d of [buildDir, imageDir, dataDir, stateDir]) mkdirSync(d, { recursive: true });
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(tmp, { recursive: true, force: true })];
  let workerLog = () => '';
  try {
    const dockerfile = readDockerfile();
    console.log(`== pruned-image check: the Dockerfile's build stage in ${buildDir}`);
    buildStage(dockerfile.build, buildDir);
    const image = finalStage(dockerfile.final, buildDir, imageDir);
    rmSync(buildDir, { recursive: true, force: true });
    const missing = unresolvedRequires(imageDir);
    if (missing.length) throw new Error(missing.join('; '));

    const cli = findTemporalCli({ build: true, log: (l) => console.log(l) });
    if (!cli) throw new Error('no Temporal CLI (set TEMPORAL_CLI, or see README)');
    const server = await startDevServer({ cli: cli.path, headless: true });
    cleanups.push(() => server.stop());
    const users = (
      JSON.parse(readFileSync(path.join(ROOT, 'examples', 'channel-users.json'), 'utf8')) as { users: ChannelUser[] }
    ).users;
    const simulator = await startChannelSimulator({ users, accessKey: ACCESS_KEY, accessSecret: ACCESS_SECRET });
    cleanups.push(() => simulator.close());
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    const csv = readFileSync(path.join(ROOT, 'examples', 'members.csv'), 'utf8').split('\n');
    const membersFile = path.join(dataDir, 'members.csv');
    writeFileSync(membersFile, `${csv.slice(0, ROWS + 1).join('\n')}\n`);

    // The image's ENV and CMD; then what docker-compose.yml sets, pointed at this machine's stand-ins.
    const taskQueue = 'pruned-image-check';
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: tmp,
      ...image.env,
      BACKFILL_DATA_DIR: stateDir,
      BACKFILL_SOURCE_DIRS: dataDir,
      TEMPORAL_ADDRESS: server.address,
      BACKFILL_TASK_QUEUE: taskQueue,
      CHANNEL_API_URL: simulator.url,
      CHANNEL_ACCESS_KEY: ACCESS_KEY,
      CHANNEL_ACCESS_SECRET: ACCESS_SECRET,
      CHANNEL_RATE_LIMIT: '100',
      WEBHOOK_URL: receiver.url,
    };
    console.log(`== the image's CMD from ${imageDir}: ${image.cmd.join(' ')}`);
    const worker = spawnWorker(image.cmd.slice(1), imageDir, env);
    workerLog = worker.log;
    const { proc, exited } = worker;
    cleanups.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    });
    await untilPolling(worker, 'the worker');

    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const input: BackfillInput = { source: { type: 'csv', path: membersFile } };
    const handle = await client.workflow.start(WORKFLOW_TYPE, {
      taskQueue,
      workflowId: 'pruned-image-check',
      args: [input],
    });
    const result = (await Promise.race([
      handle.result(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the backfill did not complete within 90 s')), 90_000),
      ),
    ])) as BackfillResult;
    const delivered = receiver.accepted().length;
    const problems: string[] = [];
    if (result.processed !== ROWS) problems.push(`processed ${result.processed} of ${ROWS} rows`);
    if (result.failed !== 0) problems.push(`${result.failed} failed`);
    if (result.upserts + result.deletes === 0) problems.push('no replay decided: the check would prove nothing');
    if (delivered !== result.upserts + result.deletes)
      problems.push(
        `the receiver accepted ${delivered} deliveries, the run reports ${result.upserts + result.deletes}`,
      );
    if (problems.length) throw new Error(`the backfill completed wrongly: ${problems.join('; ')}`);

    // The CLI's worker command in the image (`node dist/src/cli/main.js worker`): it starts the CMD's command as a
    // child, which must find everything it needs without devDependencies, and stops cleanly on SIGTERM.
    await cliWorkerStartsAndStops(imageDir, { ...env, BACKFILL_TASK_QUEUE: `${taskQueue}-cli` });
    console.log(
      `pruned-image check: passed (the pruned image's worker completed a backfill of ${result.processed} members: ${result.upserts} upserts, ${result.deletes} deletes, ` +
        `${result.unchanged} unchanged, ${delivered} webhooks delivered; ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  } catch (err) {
    console.error(`pruned-image check: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    if (workerLog())
      console.error(`the worker's output (last lines):\n${workerLog().split('\n').slice(-30).join('\n')}`);
    process.exitCode = 1;
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  }
}

interface SpawnedWorker {
  proc: ChildProcess;
  exited: Promise<number | null>;
  /** Everything it printed so far (stdout and stderr). */
  log(): string;
}

/** A worker command of the image (`node <args>`), run from the image's directory with its output collected. */
function spawnWorker(args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnedWorker {
  let log = '';
  const proc = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, log: () => log };
}

/** Resolves once the worker polls its task queue; rejects if it exits first or takes over a minute. */
async function untilPolling(worker: SpawnedWorker, name: string): Promise<void> {
  await Promise.race([
    until(`${name} polls its task queue`, () => WORKER_RUNNING.test(worker.log()), 60_000),
    worker.exited.then((code) => {
      throw new Error(`${name} exited (code ${code}) before polling`);
    }),
  ]);
}

async function cliWorkerStartsAndStops(imageDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const worker = spawnWorker(['dist/src/cli/main.js', 'worker'], imageDir, env);
  try {
    await untilPolling(worker, 'the CLI worker');
    worker.proc.kill('SIGTERM');
    const code = await worker.exited;
    if (code !== 0) throw new Error(`the CLI worker exited with ${code} on SIGTERM`);
  } catch (err) {
    worker.proc.kill('SIGKILL');
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}; its output:\n${worker.log().split('\n').slice(-20).join('\n')}`,
    );
  }
  console.log('pruned-image check: `node dist/src/cli/main.js worker` polled and stopped cleanly on SIGTERM');
}

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Exit once done: a connection's lingering timer must not keep CI waiting.
void main().then(() => process.exit(process.exitCode ?? 0));
