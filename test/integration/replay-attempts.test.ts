// What activities/replay-attempts.ts relies on, against a real dev server: heartbeat details recorded by a failing
// attempt reach every later attempt of the same activity, also across an attempt that records none, so the
// attempts refused by workers that could not send can be told from the real tries.
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deliveryAttempt, recordRefusal } from '../../activities/replay-attempts';
import type { DevServer } from '../../dev/temporal-cli';
import { connectClient, startTestServer } from '../support/stack';

let server: DevServer;
beforeAll(async () => {
  server = await startTestServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

it(
  'refusals counted in heartbeat details survive retries; the last attempt is the second real try',
  { timeout: 60_000 },
  async () => {
    const seen: { attempt: number; details: unknown }[] = [];
    const activities = {
      async tryOnce(): Promise<number> {
        const { attempt, heartbeatDetails } = Context.current().info;
        seen.push({ attempt, details: heartbeatDetails });
        if (attempt === 1 || attempt === 3) {
          // Refused: counted, nothing tried.
          recordRefusal();
          throw ApplicationFailure.retryable('refused', 'WorkerLacksWebhookUrl');
        }
        if (attempt === 2) throw ApplicationFailure.retryable('receiver said 503', 'ReplayNotDelivered'); // a real try
        return deliveryAttempt(attempt, heartbeatDetails);
      },
    };
    const connection = await NativeConnection.connect({ address: server.address });
    const { client, connection: clientConnection } = await connectClient(server.address);
    try {
      const worker = await Worker.create({
        connection,
        taskQueue: 'replay-attempts',
        workflowsPath: path.resolve(__dirname, '../support/attempts-workflow.ts'),
        activities,
      });
      const result = await worker.runUntil(
        client.workflow.execute('attemptsWorkflow', { taskQueue: 'replay-attempts', workflowId: 'replay-attempts-1' }),
      );
      expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
      expect(seen.map((s) => s.details)).toEqual([undefined, { refused: 1 }, { refused: 1 }, { refused: 2 }]);
      expect(result).toBe(2);
    } finally {
      await clientConnection.close();
      await connection.close();
    }
  },
);
