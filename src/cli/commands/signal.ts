import { pauseSignal, resumeSignal } from '../../../workflows/definitions';
import type { SignalCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { connectTemporal, describeBackfill, loadCliEnv, temporalError } from '../temporal-env';

// `pause` and `resume`: the workflow's own signals, exactly as `temporal workflow signal` sends them.

export async function runSignal(cmd: SignalCommand, io: CliIo): Promise<number> {
  const session = await connectTemporal(loadCliEnv(io.env));
  try {
    const { handle, description } = await describeBackfill(session, cmd.workflowId);
    const status = description.status.name;
    if (status !== 'RUNNING')
      throw new CliError(`run ${cmd.workflowId} is not running (${status}): there is nothing to ${cmd.name}`);
    try {
      if (cmd.name === 'resume' && cmd.confirmDeletes) await handle.signal(resumeSignal, { confirmDeletes: true });
      else if (cmd.name === 'resume') await handle.signal(resumeSignal);
      else if (cmd.reason !== undefined) await handle.signal(pauseSignal, cmd.reason);
      else await handle.signal(pauseSignal);
    } catch (err) {
      throw temporalError(err, session, cmd.workflowId);
    }
    const what =
      cmd.name === 'pause'
        ? `paused ${cmd.workflowId}: no new lookup or replay starts until resume${cmd.reason !== undefined ? ` (${cmd.reason})` : ''}`
        : `resumed ${cmd.workflowId}${cmd.confirmDeletes ? ': deletes confirmed, the delete guard lets them go' : ''}`;
    await write(io.stdout, `${what}\n`);
    return EXIT.OK;
  } finally {
    await session.close();
  }
}
