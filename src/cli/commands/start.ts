import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { backfillWebhooks } from '../../../workflows/backfill';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../../workflows/definitions';
import type { StartCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { connectTemporal, describeBackfill, loadCliEnv, temporalError, type TemporalSession } from '../temporal-env';
import { describeSource } from '../../source/source-kinds';
import { follow } from './status';

// `start`: the same workflow start as `temporal workflow start --type backfillWebhooks ...`.

export async function runStart(cmd: StartCommand, io: CliIo): Promise<number> {
  const env = loadCliEnv(io.env);
  const session = await connectTemporal(env);
  try {
    const input: BackfillInput =
      cmd.planRun !== undefined
        ? { ...cmd.input, fromPlan: { auditPath: await auditOf(session, cmd.planRun, 'plan') } }
        : cmd.verifyRun !== undefined
          ? {
              ...cmd.input,
              verifyAfter: {
                auditPath: await auditOf(session, cmd.verifyRun, 'repair'),
                ...(cmd.clockSkewMs !== undefined ? { clockSkewMs: cmd.clockSkewMs } : {}),
              },
            }
          : cmd.input;
    const kind = input.verifyAfter ? 'verify' : input.dryRun ? 'dry run' : 'backfill';
    try {
      await session.client.workflow.start<typeof backfillWebhooks>(WORKFLOW_TYPE, {
        taskQueue: env.BACKFILL_TASK_QUEUE,
        workflowId: cmd.workflowId,
        args: [input],
        // Shown as the run's Summary and Details in the Web UI.
        staticSummary: `${kind} of ${describeSource(input.source)}${input.fromPlan ? ' from a plan' : ''}`,
        staticDetails: [
          `- source: ${describeSource(input.source)}`,
          `- dry run: ${input.dryRun ? 'yes' : 'no'}`,
          `- run label: ${input.runLabel ?? cmd.workflowId}`,
          ...(input.fromPlan ? [`- plan: ${input.fromPlan.auditPath}`] : []),
          ...(input.verifyAfter ? [`- verifies the repair in: ${input.verifyAfter.auditPath}`] : []),
          ...(input.expectChannelId ? [`- expected channel: ${input.expectChannelId}`] : []),
          ...(input.onlyChangedSince ? [`- only changed since: ${input.onlyChangedSince}`] : []),
        ].join('\n'),
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new CliError(
          `a run with workflow id ${cmd.workflowId} is already running: pick another --workflow-id, or follow it with status`,
        );
      }
      throw temporalError(err, session, cmd.workflowId);
    }
    const plan = input.fromPlan
      ? `, the plan in ${input.fromPlan.auditPath}`
      : input.verifyAfter
        ? `, of the repair in ${input.verifyAfter.auditPath}`
        : '';
    await write(
      io.stdout,
      `started ${cmd.workflowId} (${kind === 'backfill' ? 'run' : kind} of ${cmd.input.source.path}${plan}, task queue ${env.BACKFILL_TASK_QUEUE})\n`,
    );
    if (!cmd.wait) {
      await write(io.stdout, `follow it with: webhook-backfill status --workflow-id ${cmd.workflowId}\n`);
      return EXIT.OK;
    }
    return await follow(session, cmd.workflowId, io, cmd.intervalSeconds);
  } finally {
    await session.close();
  }
}

/** The audit log of a completed run: a dry run's (its plan, --from-plan) or a real run's (the repair, verify --after). */
async function auditOf(session: TemporalSession, runId: string, want: 'plan' | 'repair'): Promise<string> {
  const { handle, description } = await describeBackfill(session, runId);
  const status = description.status.name;
  const [what, flag] = want === 'plan' ? ['dry run', '--from-plan'] : ['run', 'verify --after'];
  if (status !== 'COMPLETED')
    throw new CliError(`the ${what} ${runId} has not completed (${status}): ${flag} needs a finished ${want}`);
  let result: BackfillResult;
  try {
    result = (await handle.result()) as BackfillResult;
  } catch (err) {
    throw temporalError(err, session, runId);
  }
  if (want === 'plan' && !result.dryRun)
    throw new CliError(`${runId} was not a dry run: --from-plan takes a dry run's plan`);
  if (want === 'repair' && result.dryRun)
    throw new CliError(`${runId} was a dry run: it replayed nothing, verify --after takes a finished repair`);
  return result.auditPath;
}
