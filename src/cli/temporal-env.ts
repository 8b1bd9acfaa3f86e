import {
  Client,
  Connection,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { codecFromEnvValues } from '../codec/aes-gcm-codec';
import { CLIENT_SETTINGS, ConfigError, loadSettings, withTemporal } from '../config';
import { WORKFLOW_TYPE } from '../../workflows/definitions';
import { CliError, EXIT } from './errors';

// What the workflow commands need from the environment: where Temporal is, and the payload codec if the workers
// encrypt. Read by the worker's own loader (src/config.ts loadSettings) with the client's variables only: a client
// never needs the Channel Talk and webhook secrets.

/** The validated environment; TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE are the effective values (variable, profile, default). */
export type CliEnv = ReturnType<typeof loadCliEnv>;

/**
 * Parses the environment and resolves the Temporal connection (reading any certificate and key files) with the
 * worker's loader; a bad variable, file or profile is a configuration error (exit 2) naming it, never its value.
 */
export function loadCliEnv(env: NodeJS.ProcessEnv) {
  return settingsOrUsage(() => withTemporal(env, loadSettings(env, CLIENT_SETTINGS)));
}

/** The settings `load` reads, or its configuration error as the CLI's usage error (exit 2), message unchanged. */
export function settingsOrUsage<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.USAGE);
    throw err;
  }
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
