// Takes docs/web-ui.png, the README's picture of a run in the Temporal Web UI, the same way the
// browser test reads it: a dev server with its Web UI, the simulated Channel Talk API and receiver, a
// slowed run of examples/members.csv, and Debian's Chromium (headless, playwright-core).
//
//   npx tsx test/support/take-screenshot.ts [output.png]
//
// Needs /usr/bin/chromium (.ci/run installs it) and the Temporal CLI (see README).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_TASK_QUEUE, pauseSignal, progressQuery } from '../../workflows/definitions';
import { launchBrowser, requireChromium, startUiScene, workflowPageUrl, type Browser, type UiScene } from './browser';
import { waitFor } from './stack';

const OUT = path.resolve(process.argv[2] ?? path.join(__dirname, '../../docs/web-ui.png'));

async function main(): Promise<void> {
  requireChromium();
  let scene: UiScene | undefined;
  let browser: Browser | undefined;
  try {
    // 8 requests/s: the 300 rows take about 40 s, so the run is caught while it works.
    scene = await startUiScene({
      workflowId: 'backfill-nov-2024',
      rateLimit: 8,
      batchSize: 20,
      runLabel: 'nov-2024-outage',
      taskQueue: DEFAULT_TASK_QUEUE,
    });
    browser = await launchBrowser({ width: 1280, height: 760 });
    const { handle, uiUrl, workflowId } = scene;
    const progress = await waitFor(
      'the run to be a third of the way',
      async () => {
        const p = await handle.query(progressQuery);
        return p.processed >= 100 ? p : undefined;
      },
      90_000,
    );

    const page = browser.page;
    await page.goto(workflowPageUrl(uiUrl, workflowId), { waitUntil: 'domcontentloaded' });
    await page.getByRole('heading', { name: workflowId }).first().waitFor({ timeout: 20_000 });
    await page.getByText('User Metadata', { exact: true }).first().click();
    await page.waitForURL(/\/user-metadata$/, { timeout: 10_000 });
    const details = page.frameLocator('iframe[title="output"]').locator('body');
    await waitFor(
      '"Current Details" with the progress',
      async () =>
        (await details.innerText({ timeout: 5_000 }).catch(() => '')).includes('processed') ? true : undefined,
      20_000,
    );
    // Let the panel and the summaries list finish drawing.
    await page.waitForTimeout(1_000);
    mkdirSync(path.dirname(OUT), { recursive: true });
    await page.screenshot({ path: OUT });
    const shown = (await details.innerText()).split('\n').find((l) => l.includes('processed'));
    const after = await handle.query(progressQuery);
    console.log(
      `wrote ${OUT}: the page shows "${shown?.trim()}" (progress query: ${progress.processed} before the page opened, ${after.processed} after the screenshot, of ${after.total})`,
    );
    // Nothing more to see: pause the run (its batches stop cleanly) before everything is shut down.
    await handle.signal(pauseSignal, 'screenshot taken');
    await waitFor(
      'the run to pause',
      async () => ((await handle.query(progressQuery)).paused ? true : undefined),
      20_000,
    );
  } finally {
    await browser?.close();
    await scene?.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`take-screenshot: ${(err as Error).message}`);
    process.exit(1);
  },
);
