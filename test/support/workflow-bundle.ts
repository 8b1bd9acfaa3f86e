// The workflow code bundled for the test workers (webpack: seconds of CPU). Once per `npm test` run rather than once
// per file: the global setup (test/support/global-setup.ts) names a directory for the run, the first file that
// needs the bundle writes it there, and the files after it (in any vitest worker process) load that file. Outside
// such a run (watch mode, the scripts under test/support run with tsx) each process bundles for itself.
import { existsSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowBundleOption } from '@temporalio/worker';

/** Set by the global setup: the directory where this run's bundle is (or will be) written. */
export const SHARED_BUNDLE_DIR_ENV = 'WEBHOOK_BACKFILL_TEST_BUNDLE_DIR';

const WORKFLOWS = path.resolve(__dirname, '../../workflows/index.ts');
/** How long a file waits for the bundle another file is writing before it gives up. */
const WAIT_FOR_OTHER_MS = 180_000;

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

// Loaded when used: the global setup imports this file in vitest's own process, which needs no Temporal worker.
const bundleHere = async () => {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS, logger: quietLogger });
};

let bundle: Promise<WorkflowBundleOption> | undefined;
/** The workflow bundle for a test worker: this run's shared file when there is one, else bundled here. */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  const dir = process.env[SHARED_BUNDLE_DIR_ENV];
  bundle ??= dir ? sharedBundle(dir) : bundleHere();
  return bundle;
}

async function sharedBundle(dir: string): Promise<WorkflowBundleOption> {
  const file = path.join(dir, 'workflow-bundle.js');
  const lock = path.join(dir, 'bundling');
  const deadline = Date.now() + WAIT_FOR_OTHER_MS;
  for (;;) {
    if (existsSync(file)) return { codePath: file };
    // Whoever creates the lock file bundles; a failure removes it so that another file tries.
    const mine = await writeFile(lock, String(process.pid), { flag: 'wx' }).then(
      () => true,
      () => false,
    );
    if (mine) {
      try {
        const built = await bundleHere();
        await writeFile(`${file}.part`, built.code);
        await rename(`${file}.part`, file); // whole or absent for the others
        return built;
      } finally {
        await rm(lock, { force: true });
      }
    }
    if (Date.now() > deadline) throw new Error(`no workflow bundle appeared in ${dir} within ${WAIT_FOR_OTHER_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
