import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { findTemporalCli, startDevServer, type DevServer } from '../../dev/temporal-cli';
import { WORKFLOW_TYPE } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from './examples';
import { CHROMIUM } from './prerequisites';
import { startStack, type Stack } from './stack';

// Debian's Chromium driven by playwright-core: no browser download, ever. `npm test` installs the package when
// /usr/bin/chromium is missing (test/support/prerequisites.ts); without it the browser tests fail (never skip).

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Throws a clear error when Debian's Chromium is not installed. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the Web UI browser test needs Debian's chromium package. ` +
        'npm test installs it when run as root (apt-get install -y chromium); install it so, or set CHROMIUM_PATH.',
    );
  }
  return CHROMIUM;
}

/**
 * A headless Chromium with a fresh profile in its own temporary --user-data-dir (playwright passes it
 * to the browser; a persistent context is how playwright accepts one), removed on close.
 */
export async function launchBrowser(o: { width?: number; height?: number } = {}): Promise<Browser> {
  const executablePath = requireChromium();
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'backfill-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: ARGS,
      viewport: { width: o.width ?? 1440, height: o.height ?? 1000 },
      timeout: 30_000,
      // Playwright must not go looking for a browser build of its own.
      chromiumSandbox: false,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw new Error(`could not start ${executablePath}: ${(err as Error).message.split('\n')[0]}`);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The page's visible text, whitespace collapsed, for matching what a person reads. */
export async function visibleText(page: Page): Promise<string> {
  const text = await page.locator('body').innerText();
  return text.replace(/\s+/g, ' ').trim();
}

// ---- A run of the example data on a dev server with its Web UI ------------------------------------

export interface UiScene {
  server: DevServer;
  uiUrl: string;
  stack: Stack;
  examples: Examples;
  handle: WorkflowHandle;
  workflowId: string;
  close(): Promise<void>;
}

/**
 * Starts a dev server WITH its Web UI, the simulated Channel Talk API and webhook receiver, an
 * in-process worker, and a run of examples/members.csv slowed by CHANNEL_RATE_LIMIT so that it is
 * visibly mid-way for a while.
 */
export async function startUiScene(o: {
  workflowId: string;
  rateLimit: number;
  batchSize?: number;
  runLabel?: string;
  taskQueue?: string;
}): Promise<UiScene> {
  const cli = findTemporalCli({ build: true, log: (l) => console.log(l) });
  if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI or install Go so the tests can build it (see README)');
  const [server, examples] = await Promise.all([startDevServer({ cli: cli.path, headless: false }), loadExamples()]);
  let stack: Stack | undefined;
  try {
    if (!server.uiUrl) throw new Error('the dev server started without its Web UI');
    stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours: examples.faults.receiver,
      env: { CHANNEL_RATE_LIMIT: String(o.rateLimit) },
      ...(o.taskQueue ? { taskQueue: o.taskQueue } : {}),
    });
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId: o.workflowId,
      args: [
        {
          source: { type: 'csv', path: EXAMPLE_CSV },
          batchSize: o.batchSize ?? 20,
          ...(o.runLabel ? { runLabel: o.runLabel } : {}),
        },
      ],
    });
    const started = stack;
    return {
      server,
      uiUrl: server.uiUrl,
      stack: started,
      examples,
      handle,
      workflowId: o.workflowId,
      async close() {
        await started.close();
        await server.stop();
      },
    };
  } catch (err) {
    await stack?.close();
    await server.stop();
    throw err;
  }
}

export function workflowPageUrl(uiUrl: string, workflowId: string, namespace = 'default'): string {
  return `${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`;
}

export function workflowListUrl(uiUrl: string, query: string, namespace = 'default'): string {
  return `${uiUrl}/namespaces/${namespace}/workflows?query=${encodeURIComponent(query)}`;
}
