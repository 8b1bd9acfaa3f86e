import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { backfillWebhooks } from '../../../workflows/backfill';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../../workflows/definitions';
import type { StartCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { connectTemporal, describeBackfill, loadCliEnv, temporalError, type TemporalSession } from '../temporal-env';
import { follow } from './status';

// `start`: the same workflow start as `temporal workflow start --type backfillWebhooks ...`.

export async function runStart(cmd: StartCommand, io: CliIo): Promise<number> {
  const env = loadCliEnv(io.env);
  const session = await connectTemporal(env);
  try {
    const input: BackfillInput =
      cmd.planRun !== undefined
        ? { ...cmd.input, fromPlan: { auditPath: await planOf(session, cmd.planRun) } }
        : cmd.input;
    try {
      await session.client.workflow.start<typeof backfillWebhooks>(WORKFLOW_TYPE, {
        taskQueue: env.BACKFILL_TASK_QUEUE,
        workflowId: cmd.workflowId,
        args: [input],
        // Shown as the run's Summary and Details in the Web UI.
        staticSummary: `${input.dryRun ? 'dry run' : 'backfill'} of ${describeSource(input)}${input.fromPlan ? ' from a plan' : ''}`,
        staticDetails: [
          `- source: ${describeSource(input)}`,
          `- dry run: ${input.dryRun ? 'yes' : 'no'}`,
          `- run label: ${input.runLabel ?? cmd.workflowId}`,
          ...(input.fromPlan ? [`- plan: ${input.fromPlan.auditPath}`] : []),
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
    const kind = cmd.input.dryRun ? 'dry run' : 'run';
    const plan = input.fromPlan ? `, the plan in ${input.fromPlan.auditPath}` : '';
    await write(
      io.stdout,
      `started ${cmd.workflowId} (${kind} of ${cmd.input.source.path}${plan}, task queue ${env.BACKFILL_TASK_QUEUE})\n`,
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

/** The audit log (the plan) of a completed dry run. */
async function planOf(session: TemporalSession, dryRunId: string): Promise<string> {
  const { handle, description } = await describeBackfill(session, dryRunId);
  const status = description.status.name;
  if (status !== 'COMPLETED')
    throw new CliError(`the dry run ${dryRunId} has not completed (${status}): --from-plan needs its finished plan`);
  let result: BackfillResult;
  try {
    result = (await handle.result()) as BackfillResult;
  } catch (err) {
    throw temporalError(err, session, dryRunId);
  }
  if (!result.dryRun) throw new CliError(`${dryRunId} was not a dry run: --from-plan takes a dry run's plan`);
  return result.auditPath;
}

function describeSource(input: BackfillInput): string {
  const source = input.source as { type: string; path?: string; table?: string };
  return `${source.type} ${source.path ?? source.table ?? 'query'}`;
}
