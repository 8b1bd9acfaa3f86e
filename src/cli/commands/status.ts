import type { BackfillResult, Progress } from '../../../workflows/definitions';
import type { StatusCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { ProgressOutput, RateMeter, renderProgress } from '../progress-bar';
import { NoWorkerAnswer, runState, type RunState } from '../run-state';
import { connectTemporal, loadCliEnv, type TemporalSession } from '../temporal-env';

// `status`: one snapshot (--once, --json) or a live view until the run ends.

export async function runStatus(cmd: StatusCommand, io: CliIo): Promise<number> {
  const session = await connectTemporal(loadCliEnv(io.env));
  try {
    if (cmd.mode === 'follow') return await follow(session, cmd.workflowId, io, cmd.intervalSeconds);
    const state = await runState(session, cmd.workflowId);
    // --json prints a failed run too (with its failure); the text line leaves that to the error line.
    if (cmd.mode === 'json') await write(io.stdout, `${JSON.stringify(stateJson(state), null, 2)}\n`);
    else if (state.kind !== 'closed')
      await write(io.stdout, `${stateLine(state, null, { barWidth: 20, unicode: false })}\n${retryingLines(state)}`);
    return exitCodeOf(state);
  } finally {
    await session.close();
  }
}

/** 0 running or completed, 3 paused; a failed, terminated, cancelled or timed-out run is an error (1). */
function exitCodeOf(state: RunState): number {
  if (state.kind === 'closed') throw new CliError(state.message);
  if (state.kind === 'running' && state.progress.paused) return EXIT.PAUSED;
  return EXIT.OK;
}

/** A completed run's counters in the progress query's shape. */
export function progressOfResult(result: BackfillResult): Progress {
  return {
    processed: result.processed,
    upserts: result.upserts,
    deletes: result.deletes,
    unchanged: result.unchanged,
    failed: result.failed,
    skipped: result.skipped,
    ...(result.changedDuringRepair ? { changedDuringRepair: result.changedDuringRepair } : {}),
    ...(result.verify ? { verify: result.verify } : {}),
    total: result.total,
    batchesDone: 0,
    batchesTotal: 0,
    pendingReplays: 0,
    paused: false,
    pauseReason: null,
    dryRun: result.dryRun,
    runs: result.runs,
    auditPath: result.auditPath,
    done: true,
  };
}

/** `status --json`: the progress query's answer plus workflowId, runId and status; for a closed run, its result or failure. */
export function stateJson(state: RunState): Record<string, unknown> {
  const head = { workflowId: state.workflowId, runId: state.runId };
  switch (state.kind) {
    case 'running':
      return { ...head, status: 'RUNNING', ...state.progress, retrying: state.retrying };
    case 'completed':
      return { ...head, status: 'COMPLETED', ...state.result, paused: false, pauseReason: null, done: true };
    case 'closed':
      return { ...head, status: state.status, failure: state.message };
  }
}

/** Under the status line: what Temporal is retrying and why (e.g. a worker without WEBHOOK_URL), a few at most. */
function retryingLines(state: RunState): string {
  if (state.kind !== 'running' || state.retrying.length === 0) return '';
  const shown = state.retrying
    .slice(0, 5)
    .map(
      (r) =>
        `  retrying ${r.activity} (attempt ${r.attempt}${r.worker ? `, last failed on ${r.worker}` : ''}): ${r.message}\n`,
    );
  const more = state.retrying.length > 5 ? [`  ... and ${state.retrying.length - 5} more\n`] : [];
  return [...shown, ...more].join('');
}

function stateLine(
  state: RunState,
  rate: number | null,
  o: { barWidth: number; unicode: boolean; columns?: number },
): string {
  switch (state.kind) {
    case 'running':
      return `${state.workflowId}  ${renderProgress(state.progress, { rate, ...o })}`;
    case 'completed':
      return `${state.workflowId}  completed  ${renderProgress(progressOfResult(state.result), { rate: null, ...o })}  audit ${state.result.auditPath}`;
    case 'closed':
      return state.message;
  }
}

/** Redraws (terminal) or prints (log) the progress until the run ends; pauses are shown and waited through. */
export async function follow(
  session: TemporalSession,
  workflowId: string,
  io: CliIo,
  intervalSeconds?: number,
): Promise<number> {
  const tty = io.stdout.isTTY === true;
  const intervalMs = (intervalSeconds ?? (tty ? 1 : 5)) * 1000;
  const meter = new RateMeter();
  // In a log: a line per poll while it moves (the loop sleeps the interval), at least one a minute while it does not.
  const output = new ProgressOutput({
    tty,
    intervalMs: 0,
    ...(io.stdout.columns !== undefined ? { columns: io.stdout.columns } : {}),
    stamp: () => io.now().toISOString(),
  });
  const show = async (line: string, final: boolean) => {
    const text = output.update(line, Date.now(), final);
    if (text) await write(io.stdout, text);
  };
  // Ctrl-C leaves the terminal on a fresh line.
  const onInterrupt = () => {
    io.stdout.write(output.end());
    process.exit(130);
  };
  if (tty) process.once('SIGINT', onInterrupt);
  const options = () => ({ barWidth: tty ? 24 : 20, unicode: tty });
  try {
    for (;;) {
      let state: RunState;
      try {
        state = await runState(session, workflowId);
      } catch (err) {
        if (!(err instanceof NoWorkerAnswer)) throw err;
        await show(`${workflowId}  waiting: ${err.message}`, false);
        await io.sleep(intervalMs);
        continue;
      }
      if (state.kind === 'running') {
        meter.sample(Date.now(), state.progress.processed, state.progress.paused);
        await show(stateLine(state, meter.rate(), options()), false);
        await io.sleep(intervalMs);
        continue;
      }
      if (state.kind === 'completed') {
        await show(stateLine(state, null, options()), true);
        return EXIT.OK;
      }
      await write(io.stdout, output.end());
      throw new CliError(state.message);
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    const end = output.end();
    if (end) await write(io.stdout, end);
  }
}
