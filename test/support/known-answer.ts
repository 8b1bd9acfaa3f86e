// A finished run of the synthetic data set (dev/synthetic.ts) against its known answer, as the end-to-end tests
// check it: the counts the workflow returns, then every audit entry and delivery member by member.
import type { WorkflowHandle } from '@temporalio/client';
import { expect } from 'vitest';
import {
  checkSyntheticRun,
  syntheticCounts,
  type AuditRecord,
  type DeliveryRecord,
  type SyntheticCounts,
  type SyntheticRunCheck,
} from '../../dev/synthetic';
import { webhookId } from '../../src/webhook/webhook-id';
import { progressQuery, type BackfillResult } from '../../workflows/definitions';
import { waitFor } from './stack';

/**
 * Expects the run's counts to be the data set's (every member processed, none failed or skipped, `also` on top)
 * and returns the expected counts for the test's own checks.
 */
export function expectKnownCounts(
  result: BackfillResult,
  o: { n: number; seed: number; also?: Partial<BackfillResult> },
): SyntheticCounts {
  const expected = syntheticCounts(o.n, o.seed);
  expect(result).toMatchObject({
    processed: o.n,
    upserts: expected.upserts,
    deletes: expected.deletes,
    unchanged: expected.unchanged,
    failed: 0,
    skipped: 0,
    ...o.also,
  });
  return expected;
}

/** The run's audit log and deliveries checked member by member; the problems are left to the test to expect. */
export function checkKnownAnswer(o: {
  n: number;
  seed: number;
  workflowId: string;
  audit: Iterable<AuditRecord>;
  deliveries: Iterable<DeliveryRecord>;
}): SyntheticRunCheck {
  return checkSyntheticRun({
    n: o.n,
    seed: o.seed,
    runLabel: o.workflowId,
    webhookIdOf: webhookId,
    audit: o.audit,
    deliveries: o.deliveries,
  });
}

/** The run's audit path, once the workflow has prepared it. */
export function auditPathOf(handle: WorkflowHandle, timeoutMs = 90_000): Promise<string> {
  return waitFor('the audit path', async () => (await handle.query(progressQuery)).auditPath ?? undefined, timeoutMs);
}
