import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import { CustomerRows, customerWrites } from '../../dev/customer-database';
import type { DevServer } from '../../dev/temporal-cli';
import { OUTCOMES } from '../../src/domain/types';
import { VERDICTS } from '../../src/domain/verdicts';
import { launchBrowser, requireChromium, visibleText, type Browser } from '../support/browser';
import { runProcess } from '../support/child-process';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, runBackfill, startStack, startTestServer } from '../support/stack';

// `webhook-backfill report --format html`, read as a person reads it: a repair of the example data (with its API and
// receiver faults, so there are failures) and a verify run after it, on a real dev server; the CLI writes the page
// with --verify; Debian's Chromium opens the file. The page must load nothing (no request leaves the browser), log
// no console error, and show the audit log's own counts; its screenshot and the page are kept as test artifacts
// (test-artifacts/, or $TEST_ARTIFACTS_DIR) for whoever reviews the run.

const ARTIFACTS = path.resolve(process.env.TEST_ARTIFACTS_DIR ?? path.join(__dirname, '../../test-artifacts'));
/** The CLI from the TypeScript sources (bin/webhook-backfill.js would run dist/ when a build is there). */
const CLI = ['--require', require.resolve('tsx/cjs'), path.resolve(__dirname, '../../src/cli/main.ts')];

let server: DevServer;
let examples: Examples;
let browser: Browser | undefined;
/** Set when Debian's Chromium is missing: the test then fails with it (never skips). */
let noChromium: Error | undefined;

beforeAll(async () => {
  try {
    requireChromium();
  } catch (err) {
    noChromium = err as Error;
  }
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
  await mkdir(ARTIFACTS, { recursive: true });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const count = (audit: LoggedEntry[], pick: (e: LoggedEntry) => boolean) => audit.filter(pick).length;

describe('the HTML report in Chromium', () => {
  it('loads nothing, logs no error, and shows the counts of the audit log; the verify run its verdicts', async () => {
    if (noChromium) throw noChromium;
    const stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours: examples.faults.receiver,
    });
    let page: string;
    let repairLog: LoggedEntry[];
    let verifyLog: LoggedEntry[];
    try {
      const repair = await runBackfill(stack, 'html-repair', {});
      repairLog = await readAudit(repair.auditPath);
      const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
      const firstUpsert = repairLog.find((e) => e.outcome === 'upsert' && e.delivered)!;
      db.apply(customerWrites(stack.receiver.accepted(), { members: new Set([firstUpsert.memberId!]) }));
      const exported = path.join(stack.dataDir, 'export-after-repair.csv');
      await db.exportCsv(exported);
      const verify = await runBackfill(stack, 'html-verify', {
        source: { type: 'csv', path: exported },
        verifyAfter: { auditPath: repair.auditPath },
      });
      verifyLog = await readAudit(verify.auditPath);

      page = path.join(ARTIFACTS, 'html-report.html');
      const written = await runProcess(
        process.execPath,
        [
          ...CLI,
          'report',
          '--workflow-id',
          'html-repair',
          '--format',
          'html',
          '--out',
          page,
          '--verify',
          'html-verify',
        ],
        { TEMPORAL_ADDRESS: server.address, BACKFILL_TASK_QUEUE: stack.env.BACKFILL_TASK_QUEUE! },
      );
      expect(written.stderr).toBe('');
      expect(written.code).toBe(0);
      expect(written.stdout).toBe(`wrote the HTML report of ${repairLog.length} rows to ${page}\n`);
    } finally {
      await stack.close();
    }

    // No email or phone number of the example data anywhere in the file.
    const html = await readFile(page, 'utf8');
    const csv = await readFile(EXAMPLE_CSV, 'utf8');
    const contacts = [
      ...examples.users.flatMap((u) => [u.email, u.mobileNumber, u.profile?.email, u.profile?.mobileNumber]),
      ...csv
        .split('\n')
        .slice(1)
        .flatMap((row) => row.split(',').slice(1, 3)),
    ];
    for (const value of contacts)
      if (typeof value === 'string' && value.trim().length >= 6) expect(html).not.toContain(value.trim());

    browser = await launchBrowser({ width: 1100, height: 900 });
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    browser.page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });
    browser.page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    browser.page.on('pageerror', (e) => consoleErrors.push(e.message));
    await browser.page.goto(pathToFileURL(page).href, { waitUntil: 'load' });
    await browser.page.screenshot({ path: path.join(ARTIFACTS, 'html-report.png'), fullPage: true });

    expect(requests, 'requests leaving the page').toEqual([]);
    expect(consoleErrors, 'console errors').toEqual([]);

    // The counts on the page, read from the rendered document, equal the audit logs'.
    const shown = Object.fromEntries(
      await browser.page
        .locator('[data-count]')
        .evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-count'), Number(n.textContent)])),
    ) as Record<string, number>;
    for (const outcome of OUTCOMES)
      expect(shown[`outcome-${outcome}`], outcome).toBe(count(repairLog, (e) => e.outcome === outcome));
    expect(shown.delivered).toBe(count(repairLog, (e) => e.delivered === true));
    expect(shown.due).toBe(
      count(repairLog, (e) => e.outcome === 'upsert' || e.outcome === 'delete' || e.stage === 'replay'),
    );
    expect(shown['failed-total']).toBe(count(repairLog, (e) => e.outcome === 'failed'));
    expect(shown.rechecked).toBe(count(repairLog, (e) => typeof e.recheckedAt === 'string'));
    expect(shown['changed-during-repair']).toBe(count(repairLog, (e) => e.changedDuringRepair === true));
    expect(shown['failed-total']).toBeGreaterThan(0);
    for (const verdict of VERDICTS)
      expect(shown[`verdict-${verdict.replace(/ /g, '-')}`], verdict).toBe(
        count(verifyLog, (e) => e.verdict === verdict),
      );
    expect(shown['verdict-still-differs']).toBe(1);

    // What a person reads: the failed members by memberId with the next command, the dropped one to look at.
    const text = await visibleText(browser.page);
    for (const failed of repairLog.filter((e) => e.outcome === 'failed' && e.memberId))
      expect(text).toContain(failed.memberId!);
    expect(text).toContain('"only":{"auditPath"');
    expect(text).toContain(firstUpsertText(verifyLog));
  }, 180_000);
});

/** The verify run's one "still differs" member, as its row on the page starts. */
function firstUpsertText(verifyLog: LoggedEntry[]): string {
  const e = verifyLog.find((v) => v.verdict === 'still differs')!;
  return `${e.line} ${e.memberId} still differs`;
}
