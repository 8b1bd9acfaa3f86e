import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChannelFault } from '../../dev/simulator/channel-simulator';
import type { ReceiverBehaviour } from '../../dev/simulator/webhook-receiver';
import type { ChannelUser, OutcomeKind } from '../../src/domain/types';

export const EXAMPLES_DIR = path.resolve(__dirname, '../../examples');
export const EXAMPLE_CSV = path.join(EXAMPLES_DIR, 'members.csv');

export interface ExpectedOutcome {
  line: number;
  memberId: string;
  outcome: OutcomeKind;
  dryRunOutcome: OutcomeKind;
  fields?: string[];
  reason?: string;
}
export interface ExpectedCounts {
  rows: number;
  upserts: number;
  deletes: number;
  unchanged: number;
  failed: number;
  skipped: number;
}
export interface Examples {
  users: ChannelUser[];
  faults: { channel: Record<string, ChannelFault>; receiver: Record<string, ReceiverBehaviour> };
  expected: { counts: ExpectedCounts; dryRunCounts: ExpectedCounts; outcomes: ExpectedOutcome[] };
}

export async function loadExamples(): Promise<Examples> {
  const read = async (name: string) => JSON.parse(await readFile(path.join(EXAMPLES_DIR, name), 'utf8')) as unknown;
  const users = ((await read('channel-users.json')) as { users: ChannelUser[] }).users;
  return {
    users,
    faults: (await read('faults.json')) as Examples['faults'],
    expected: (await read('expected.json')) as Examples['expected'],
  };
}
