import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  type BackfillResult,
  type Progress,
} from '../../workflows/definitions';
import { EXAMPLE_CSV } from '../support/examples';
import {
  launchBrowser,
  requireChromium,
  startUiScene,
  visibleText,
  workflowListUrl,
  workflowPageUrl,
  type Browser,
  type UiScene,
} from '../support/browser';
import { waitFor } from '../support/stack';

// A person's view of a run: Debian's Chromium (headless, driven by playwright-core) opens the dev
// server's own Temporal Web UI and reads the run's progress where a person reads it, then finds the
// finished run through the BackfillStatus search attribute. Everything is checked against the
// workflow's progress query, so the page must say what the run says.

const WORKFLOW_ID = 'web-ui-run';
const RUN_LABEL = 'nov-outage-ui';
let scene: UiScene;
let browser: Browser;
/** Set when Debian's Chromium is missing: every test then fails with it (never skips). */
let noChromium: Error | undefined;

beforeAll(async () => {
  try {
    requireChromium(); // before anything is started, with how to install it
  } catch (err) {
    noChromium = err as Error;
    return;
  }
  // 30 requests/s: about 10 s for the 300 example rows, so the run is caught mid-way.
  scene = await startUiScene({ workflowId: WORKFLOW_ID, rateLimit: 30, batchSize: 20, runLabel: RUN_LABEL });
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await scene?.close();
});

/** Opens the run's page as a person would (by its id, no run id), then one of its tabs. */
async function openRunTab(page: Page, tab: 'User Metadata' | 'Search Attributes' | 'Memo'): Promise<void> {
  await page.goto(workflowPageUrl(scene.uiUrl, WORKFLOW_ID), { waitUntil: 'domcontentloaded' });
  // The UI redirects to the latest run's history; its header names the run.
  await page.getByRole('heading', { name: WORKFLOW_ID }).first().waitFor({ timeout: 20_000 });
  await page
    .getByRole('link', { name: tab, exact: true })
    .or(page.getByText(tab, { exact: true }))
    .first()
    .click();
  await page.waitForURL(new RegExp(`/${tab.toLowerCase().replace(' ', '-')}$`), { timeout: 10_000 });
}

/** The "Current Details" panel: markdown that the UI renders in its own frame. */
async function readCurrentDetails(page: Page, mustContain: string): Promise<string> {
  const body = page.frameLocator('iframe[title="output"]').locator('body');
  return waitFor(
    `"Current Details" showing "${mustContain}"`,
    async () => {
      const text = (await body.innerText({ timeout: 5_000 }).catch(() => '')).replace(/[ \t]+/g, ' ');
      return text.includes(mustContain) ? text : undefined;
    },
    20_000,
  );
}

function detailsNumbers(text: string) {
  const num = (re: RegExp, what: string): number[] => {
    const m = re.exec(text);
    if (!m) throw new Error(`no ${what} in the Current Details text:\n${text}`);
    return m.slice(1).map(Number);
  };
  const [processed, total] = num(/processed (\d+) \/ (\d+)/, '"processed N / M"');
  const [upserts, deletes, unchanged, failed, skipped] = num(
    /upserts (\d+) · deletes (\d+) · unchanged (\d+) · failed (\d+) · skipped (\d+)/,
    'counts line',
  );
  const [batchesDone, batchesTotal] = num(/batch (\d+) \/ (\d+)/, '"batch N / M"');
  return { processed, total, upserts, deletes, unchanged, failed, skipped, batchesDone, batchesTotal };
}

/** The progress written the way the details panel writes its numbers, so both go through detailsNumbers. */
function progressAsDetails(p: Progress): string {
  return [
    `processed ${p.processed} / ${p.total}`,
    `upserts ${p.upserts} · deletes ${p.deletes} · unchanged ${p.unchanged} · failed ${p.failed} · skipped ${p.skipped}`,
    `batch ${p.batchesDone} / ${p.batchesTotal}`,
  ].join('\n');
}

function expectDetailsMatch(text: string, p: Progress): void {
  expect(detailsNumbers(text)).toEqual({
    processed: p.processed,
    total: p.total,
    upserts: p.upserts,
    deletes: p.deletes,
    unchanged: p.unchanged,
    failed: p.failed,
    skipped: p.skipped,
    batchesDone: p.batchesDone,
    batchesTotal: p.batchesTotal,
  });
}

/** A search attribute's value as the "Search Attributes" tab prints it (JSON, one value per list). */
function searchAttribute(pageText: string, name: string): string | undefined {
  return new RegExp(`"${name}": \\[ "?([^"\\]]*?)"? \\]`).exec(pageText)?.[1];
}

describe('the run in the Temporal Web UI, read with a real browser', () => {
  it('shows a paused run mid-way with the progress the workflow reports', async () => {
    if (noChromium) throw noChromium;
    const { handle } = scene;
    await waitFor(
      'the run to get going',
      async () => ((await handle.query(progressQuery)).processed >= 60 ? true : undefined),
      40_000,
    );
    await handle.signal(pauseSignal, 'checking the receiver');
    // Paused and settled: in-flight batches have handed back their partial results.
    const progress = await waitFor(
      'the run to be paused and settled',
      async () => {
        const a = await handle.query(progressQuery);
        if (!a.paused) return undefined;
        await new Promise((r) => setTimeout(r, 700));
        const b = await handle.query(progressQuery);
        return b.paused && b.processed === a.processed && b.batchesDone === a.batchesDone ? b : undefined;
      },
      20_000,
    );
    expect(progress.processed).toBeGreaterThanOrEqual(60);
    expect(progress.processed).toBeLessThan(progress.total);

    const page = browser.page;
    // A member that was in a retry backoff when the pause came may still hand its batch back after
    // the 700 ms above (CI saw it): the page renders the workflow's details at load, so reload it
    // until it and a fresh query agree, then compare the two.
    let header = '';
    let details = '';
    let shown = progress;
    const deadline = Date.now() + 25_000;
    for (;;) {
      await openRunTab(page, 'User Metadata');
      header = await visibleText(page);
      details = await readCurrentDetails(page, 'paused');
      shown = await handle.query(progressQuery);
      if (JSON.stringify(detailsNumbers(details)) === JSON.stringify(detailsNumbers(progressAsDetails(shown)))) break;
      if (Date.now() > deadline) break; // the assertion below then shows the difference
    }
    expect(header).toContain('Running');
    expect(header).toContain('backfillWebhooks');
    expect(details).toContain('paused: checking the receiver');
    expectDetailsMatch(details, shown);
    expect(shown.paused).toBe(true);
    expect(shown.processed).toBeLessThan(shown.total);
    expect(details).toMatch(/members\/s, ETA/);
    // The activity summaries are listed beside it: the source check, the rest of the source read beside the first
    // batches (300 rows are more than one round of them: issue 26), and the batches by number.
    const metadataPage = await visibleText(page);
    expect(metadataPage).toContain('read and check the member source');
    expect(metadataPage).toContain('normalise the rest of the member source');
    expect(metadataPage).toContain('batch 1 (the source is still being read)');

    await openRunTab(page, 'Search Attributes');
    const attributes = await waitFor(
      'the search attributes',
      async () => {
        const text = await visibleText(page);
        return searchAttribute(text, 'BackfillStatus') ? text : undefined;
      },
      15_000,
    );
    expect(searchAttribute(attributes, 'BackfillStatus')).toBe('paused');
    // Published on the status change; a batch finishing just after may not move it (5% steps).
    const shownProcessed = Number(searchAttribute(attributes, 'BackfillProcessed'));
    expect(shownProcessed).toBeGreaterThan(0);
    expect(shownProcessed).toBeLessThanOrEqual(shown.processed);
    expect(Number(searchAttribute(attributes, 'BackfillFailed'))).toBeLessThanOrEqual(shown.failed);

    await openRunTab(page, 'Memo');
    const memo = await waitFor(
      'the memo',
      async () => {
        const text = await visibleText(page);
        return text.includes('"runLabel"') ? text : undefined;
      },
      15_000,
    );
    expect(memo).toContain(`"source": "csv: ${EXAMPLE_CSV}"`);
    expect(memo).toContain(`"runLabel": "${RUN_LABEL}"`);
    expect(memo).toContain(`"rows": ${shown.total}`);
    expect(memo).toContain('"dryRun": false');
  }, 120_000);

  it('finds the finished run under BackfillStatus="done" and shows its final counts', async () => {
    if (noChromium) throw noChromium;
    const { handle } = scene;
    await handle.signal(resumeSignal);
    const result = (await handle.result()) as BackfillResult;
    const progress = await handle.query(progressQuery);
    expect(progress.done).toBe(true);
    expect(result.processed).toBe(result.total);

    const page = browser.page;
    // Visibility is eventually consistent: reload the filtered list until the run is in it.
    const query = `BackfillStatus="done"`;
    const row = await waitFor(
      `${WORKFLOW_ID} in the list filtered by ${query}`,
      async () => {
        await page.goto(workflowListUrl(scene.uiUrl, query), { waitUntil: 'domcontentloaded' });
        const link = page.getByRole('link', { name: WORKFLOW_ID, exact: true }).first();
        const found = await link.waitFor({ timeout: 5_000 }).then(
          () => true,
          () => false,
        );
        return found ? await visibleText(page) : undefined;
      },
      30_000,
    );
    expect(row).toContain('BackfillStatus = "done"'); // the filter the page applied
    expect(row).toContain('Completed');
    expect(row).toContain(WORKFLOW_ID);
    // The same list filtered by another status does not hold it.
    await page.goto(workflowListUrl(scene.uiUrl, `BackfillStatus="paused"`), { waitUntil: 'domcontentloaded' });
    await page.getByText('There are no results for the applied filters', { exact: false }).waitFor({ timeout: 15_000 });
    const otherList = await visibleText(page);
    expect(otherList).toContain('BackfillStatus = "paused"');
    expect(otherList).toContain('0 Workflows');
    expect(await page.getByRole('link', { name: WORKFLOW_ID, exact: true }).count()).toBe(0);

    // From the list to the run, as a person clicks through, to its final details.
    await openRunTab(page, 'User Metadata');
    expect(await visibleText(page)).toContain('Completed');
    const details = await readCurrentDetails(page, 'done');
    expectDetailsMatch(details, progress);
    expect(details).toContain(`processed ${result.total} / ${result.total} (100%)`);

    await openRunTab(page, 'Search Attributes');
    const attributes = await waitFor(
      'the search attributes',
      async () => {
        const text = await visibleText(page);
        return searchAttribute(text, 'BackfillStatus') ? text : undefined;
      },
      15_000,
    );
    expect(searchAttribute(attributes, 'BackfillStatus')).toBe('done');
    expect(Number(searchAttribute(attributes, 'BackfillProcessed'))).toBe(result.processed);
    expect(Number(searchAttribute(attributes, 'BackfillFailed'))).toBe(result.failed);
  }, 60_000);
});
