// A one-activity workflow for test/integration/replay-attempts.test.ts: the activity is retried up to 4 times,
// quickly, so a test can see what Temporal hands from one attempt to the next.
import { proxyActivities } from '@temporalio/workflow';

interface AttemptsActivities {
  tryOnce(): Promise<number>;
}

const { tryOnce } = proxyActivities<AttemptsActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '50 milliseconds', backoffCoefficient: 1, maximumAttempts: 4 },
});

export async function attemptsWorkflow(): Promise<number> {
  return tryOnce();
}
