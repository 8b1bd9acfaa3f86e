import { pauseUpdate, resumeUpdate, type ControlAnswer } from '../../../workflows/definitions';
import type { SignalCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { connectTemporal, describeBackfill, loadCliEnv, temporalError } from '../temporal-env';

// `pause` and `resume`: the workflow's pause/resume updates (`temporal workflow update execute --name pause|resume`),
// which answer what actually happened. A resume the delete guard does not let through exits 3 (EXIT.PAUSED): an
// operator must not believe a run is repairing when it is not.

export async function runSignal(cmd: SignalCommand, io: CliIo): Promise<number> {
  const session = await connectTemporal(loadCliEnv(io.env));
  try {
    const { handle, description } = await describeBackfill(session, cmd.workflowId);
    const status = description.status.name;
    if (status !== 'RUNNING')
      throw new CliError(`run ${cmd.workflowId} is not running (${status}): there is nothing to ${cmd.name}`);
    let answer: ControlAnswer;
    try {
      answer =
        cmd.name === 'pause'
          ? await handle.executeUpdate(pauseUpdate, { args: [cmd.reason ?? null] })
          : await handle.executeUpdate(resumeUpdate, {
              args: [cmd.confirmDeletes ? { confirmDeletes: true } : null],
            });
    } catch (err) {
      throw temporalError(err, session, cmd.workflowId);
    }
    await write(io.stdout, `${describeAnswer(cmd.workflowId, answer)}\n`);
    return answer.outcome === 'still-paused' ? EXIT.PAUSED : EXIT.OK;
  } finally {
    await session.close();
  }
}

/** One line saying what the pause or resume did. */
export function describeAnswer(workflowId: string, answer: ControlAnswer): string {
  const reason = answer.pauseReason !== null ? ` (${answer.pauseReason})` : '';
  switch (answer.outcome) {
    case 'paused':
      return `paused ${workflowId}: no new lookup or replay starts until resume${reason}`;
    case 'already-paused':
      return `${workflowId} was already paused${reason}`;
    case 'resumed':
      return `resumed ${workflowId}${answer.deletesConfirmed ? ': deletes confirmed, the delete guard lets them go' : ''}`;
    case 'already-running':
      return `${workflowId} is running (it was not paused)`;
    case 'still-paused': {
      const guard = answer.deleteGuard;
      const counts = guard
        ? `; ${guard.deletes} of ${guard.decisions} decisions so far are deletes, ${guard.held} held back`
        : '';
      return `still paused: ${workflowId} stays paused${reason}${counts}; check the channel and CHANNEL_API_URL, then resume --confirm-deletes to let the deletes go`;
    }
  }
}
