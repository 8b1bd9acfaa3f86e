// Part of `npm run build`: bundles the workflow code once, next to the compiled worker, so a deployed
// worker starts without running webpack (seconds of start-up and a large share of its peak memory).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PREBUILT_WORKFLOW_BUNDLE } from './worker-setup';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
  await writeFile(PREBUILT_WORKFLOW_BUNDLE, code);
  console.log(
    `wrote ${path.relative(process.cwd(), PREBUILT_WORKFLOW_BUNDLE)} (${(code.length / 1024).toFixed(0)} KiB)`,
  );
}

main().catch((err: unknown) => {
  console.error(`workflow bundle failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
