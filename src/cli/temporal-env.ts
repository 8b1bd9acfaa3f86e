import {
  Client,
  Connection,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import { codecFromEnvValues } from '../codec/aes-gcm-codec';
import { envSchema } from '../config';
import {
  resolveTemporalConnection,
  temporalEnvShape,
  TemporalSettingsError,
  type TemporalConnection,
} from '../temporal/connect-config';
import { WORKFLOW_TYPE } from '../../workflows/definitions';
import { CliError, EXIT } from './errors';

// What the workflow commands need from the environment: where Temporal is, and the payload codec if
// the workers encrypt. The same names and defaults as the worker's configuration (src/config.ts), but
// without the Channel Talk and webhook secrets, which a client never needs.

export const cliEnvSchema = z.object({
  // Where Temporal is and how to authenticate: the Temporal CLI's variables and profiles, as the worker reads them.
  ...temporalEnvShape,
  BACKFILL_TASK_QUEUE: envSchema.shape.BACKFILL_TASK_QUEUE,
  BACKFILL_CODEC_KEY: envSchema.shape.BACKFILL_CODEC_KEY,
  BACKFILL_CODEC_KEY_ID: envSchema.shape.BACKFILL_CODEC_KEY_ID,
});

/** The validated environment; TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE are the effective values (variable, profile, default). */
export type CliEnv = Omit<z.infer<typeof cliEnvSchema>, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'> & {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  temporal: TemporalConnection;
};

/**
 * Parses the environment and resolves the Temporal connection (reading any certificate and key files); a bad
 * variable, file or profile is a configuration error (exit 2) naming it, never its value.
 */
export function loadCliEnv(env: NodeJS.ProcessEnv): CliEnv {
  const result = cliEnvSchema.safeParse(env);
  if (result.success) {
    let temporal: TemporalConnection;
    try {
      temporal = resolveTemporalConnection(env);
    } catch (err) {
      if (err instanceof TemporalSettingsError)
        throw new CliError(`invalid configuration: ${err.problems.join('; ')}`, EXIT.USAGE);
      throw err;
    }
    return { ...result.data, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, temporal };
  }
  const problems = result.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')} ${issue.message}`);
  throw new CliError(`invalid configuration: ${problems.join('; ')}`, EXIT.USAGE);
}

export interface TemporalSession {
  client: Client;
  connection: Connection;
  env: CliEnv;
  close(): Promise<void>;
}

export async function connectTemporal(env: CliEnv): Promise<TemporalSession> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...env.temporal.options, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new CliError(
      `cannot reach Temporal at ${env.TEMPORAL_ADDRESS}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const codec = codecFromEnvValues(env);
  const client = new Client({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    ...(codec ? { dataConverter: { payloadCodecs: [codec] } } : {}),
  });
  return { client, connection, env, close: () => connection.close() };
}

export interface BackfillRun {
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

/** The newest run of a backfill, or exit 1 with a line saying why not. */
export async function describeBackfill(session: TemporalSession, workflowId: string): Promise<BackfillRun> {
  const handle = session.client.workflow.getHandle(workflowId);
  let description: WorkflowExecutionDescription;
  try {
    description = await handle.describe();
  } catch (err) {
    throw temporalError(err, session, workflowId);
  }
  if (description.type !== WORKFLOW_TYPE) {
    throw new CliError(`workflow ${workflowId} is a ${description.type}, not a ${WORKFLOW_TYPE} run`);
  }
  return { handle, description };
}

/** A Temporal error as one line a user can act on. */
export function temporalError(err: unknown, session: TemporalSession, workflowId: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof WorkflowNotFoundError) {
    return new CliError(
      `no workflow with id ${workflowId} in namespace ${session.env.TEMPORAL_NAMESPACE} at ${session.env.TEMPORAL_ADDRESS}`,
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/deadline|UNAVAILABLE|ECONNREFUSED|connect/i.test(message)) {
    return new CliError(`Temporal at ${session.env.TEMPORAL_ADDRESS} did not answer: ${message}`);
  }
  return new CliError(message);
}
