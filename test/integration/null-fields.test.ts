import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullOpenApiUser, UNCOMPARED_USER_FIELDS } from '../../dev/simulator/openapi-user-fixture';
import type { DevServer } from '../../dev/temporal-cli';
import type { ChannelUser } from '../../src/domain/types';
import { WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { readAudit, startStack, startTestServer } from '../support/stack';

// A run over users shaped like the OpenAPI's OpenApiUserDto in full, one in five with null (or the key missing)
// in a field the repair does not compare: every member is decided from one lookup, none fails, and the replayed
// entity carries the user as Channel Talk returned it.

let server: DevServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const N = 100;
const memberId = (i: number) => `nf-${String(i).padStart(3, '0')}`;

function users(): ChannelUser[] {
  return Array.from({ length: N }, (_, i) => {
    const u = fullOpenApiUser(memberId(i)) as Record<string, unknown>;
    if (i % 5 === 0) {
      const field = UNCOMPARED_USER_FIELDS[(i / 5) % UNCOMPARED_USER_FIELDS.length]!;
      if (i % 10 === 0) u[field] = null;
      else delete u[field];
    }
    return u as ChannelUser;
  });
}

describe('users with null where the repair does not look', () => {
  it('every member is decided from one lookup; nothing fails; the entity is passed through', async () => {
    const stack = await startStack({ server, users: users() });
    try {
      // Members with an even number differ in their email (an upsert each: nf-000, nf-010, ... carry a null); the
      // others are in sync (nf-005, nf-015, ... lack a key).
      const rows = ['memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting'];
      for (let i = 0; i < N; i++)
        rows.push(
          `${memberId(i)},+821012345678,${i % 2 === 0 ? 'old@example.com' : `${memberId(i)}@example.com`},false,true`,
        );
      const csv = path.join(stack.dataDir, 'members.csv');
      await writeFile(csv, `${rows.join('\n')}\n`);
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'null-fields',
        args: [{ source: { type: 'csv', path: csv }, batchSize: 20 }],
      });
      const result = (await handle.result()) as BackfillResult;
      expect(result).toMatchObject({
        processed: N,
        upserts: N / 2,
        unchanged: N / 2,
        failed: 0,
        skipped: 0,
        deletes: 0,
      });
      const audit = await readAudit(result.auditPath);
      expect(audit).toHaveLength(N);
      expect(audit.filter((e) => e.attempts !== 1).map((e) => e.memberId)).toEqual([]);
      const byMember = new Map(audit.map((e) => [e.memberId, e]));
      expect(byMember.get(memberId(0))).toMatchObject({
        outcome: 'upsert',
        fields: ['email'],
        updatedAt: 1_730_500_000_000,
      });
      // nf-090 was served updatedAt: null, nf-015 none: no change time in their audit lines, and no failure.
      expect(byMember.get(memberId(90))).toMatchObject({ outcome: 'upsert' });
      expect(byMember.get(memberId(90))!.updatedAt).toBeUndefined();
      expect(byMember.get(memberId(15))).toMatchObject({ outcome: 'unchanged' });
      expect(byMember.get(memberId(15))!.updatedAt).toBeUndefined();

      const entity = new Map(
        stack.receiver.accepted().map((d) => [d.memberId, (d.body as { entity: Record<string, unknown> }).entity]),
      );
      expect(entity.size).toBe(N / 2);
      // Nulls arrive as Channel Talk answered them; every other field of the full user is there too.
      expect(entity.get(memberId(0))!.name).toBeNull();
      expect(entity.get(memberId(40))!.web).toBeNull();
      expect(entity.get(memberId(80))!.tags).toBeNull();
      expect(entity.get(memberId(2))).toEqual(JSON.parse(JSON.stringify(fullOpenApiUser(memberId(2)))));
      // Every delivered entity is the user as served, null change times included (nf-090: updatedAt: null).
      const served = new Map(users().map((u) => [u.memberId as string, JSON.parse(JSON.stringify(u)) as unknown]));
      for (const [id, got] of entity) expect(got, String(id)).toEqual(served.get(id ?? ''));
      expect(entity.get(memberId(90))).toHaveProperty('updatedAt', null);
      expect(entity.get(memberId(20))).toHaveProperty('unsubscribeEmailUpdatedAt', null);
    } finally {
      await stack.close();
    }
  });
});
