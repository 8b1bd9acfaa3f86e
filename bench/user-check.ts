// The CPU of checking one Channel Talk user answer (src/channel/user-schema.ts), hot (back to back) and cold (one
// check every 100 ms with the CPU caches flushed in between, as at 10 lookups/s, where every member runs cold).
// It compares the check the client runs with the loose (passthrough) schema it replaced, on the users the bench's
// simulator serves (dev/synthetic.ts) or on a full OpenApiUserDto (every field the OpenAPI document lists).
//
//   npx tsx bench/user-check.ts [--users synthetic|full] [--hot 200000] [--cold 40]
//
// Wall-clock figures on a shared machine: give the load (`uptime`) with them, and compare the rows of one run.
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { checkUserAnswer, userAnswerSchema } from '../src/channel/user-schema';
import { fullOpenApiUser } from '../dev/simulator/openapi-user-fixture';
import { syntheticUsers } from '../dev/synthetic';

/** The schema the client ran before the split (loose objects, transforms): the baseline, measured only. */
function looseBaseline() {
  const changeTime = z
    .unknown()
    .transform((v): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined))
    .optional();
  const user = z.looseObject({
    type: z
      .string()
      .nullish()
      .transform((v) => v ?? undefined),
    email: z.string().nullable().optional(),
    mobileNumber: z.string().nullable().optional(),
    unsubscribeEmail: z.boolean().nullable().optional(),
    unsubscribeTexting: z.boolean().nullable().optional(),
    profile: z.record(z.string(), z.unknown()).nullable().optional(),
    updatedAt: changeTime,
    unsubscribeEmailUpdatedAt: changeTime,
    unsubscribeTextingUpdatedAt: changeTime,
  });
  return z.looseObject({ user, online: z.unknown().optional() });
}

type Check = (json: unknown) => boolean;

const loose = looseBaseline();
const compiled = z.compile(userAnswerSchema);
const VARIANTS: Array<[name: string, check: Check]> = [
  ['loose safeParse (before)', (j) => loose.safeParse(j).success],
  ['strip safeParse', (j) => userAnswerSchema.safeParse(j).success],
  ['strip compiled safeParse', (j) => compiled.safeParse(j).success],
  ['strip compiled validate', (j) => compiled.validate(j)],
  ['checkUserAnswer (compiled safeParse)', (j) => checkUserAnswer(j).ok],
];

/** Distinct answer bodies, as Channel Talk (or the bench's simulator) sends them. */
function answerBodies(users: string, count: number): string[] {
  const list =
    users === 'full' ? Array.from({ length: count }, (_, i) => fullOpenApiUser(`m${i}`)) : syntheticUsers(count);
  return list.map((user) => JSON.stringify({ user, online: null }));
}

function hotNsPerCheck(check: Check, inputs: unknown[], n: number): number {
  const started = process.hrtime.bigint();
  let accepted = 0;
  for (let i = 0; i < n; i++) if (check(inputs[i % inputs.length])) accepted++;
  const ns = Number(process.hrtime.bigint() - started) / n;
  if (accepted !== n) throw new Error('an answer was refused');
  return ns;
}

// Larger than this machine's last-level cache: walking it evicts the check's code and data, as other work would.
const FLUSH = new Uint8Array(64 * 1024 * 1024);
function flushCaches(): void {
  for (let i = 0; i < FLUSH.length; i += 64) FLUSH[i] = (FLUSH[i]! + 1) & 0xff;
}

async function coldNs(check: Check, body: string): Promise<number> {
  await sleep(100);
  flushCaches();
  const json: unknown = JSON.parse(body);
  const started = process.hrtime.bigint();
  const ok = check(json);
  const ns = Number(process.hrtime.bigint() - started);
  if (!ok) throw new Error('an answer was refused');
  return ns;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quartiles = (xs: number[]): [number, number] => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor(s.length / 4)]!, s[Math.floor((3 * s.length) / 4)]!];
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { users: { type: 'string' }, hot: { type: 'string' }, cold: { type: 'string' } },
  });
  const users = values.users ?? 'synthetic';
  const hotN = Number(values.hot ?? 200_000);
  const coldN = Number(values.cold ?? 40);
  // The client checks a freshly parsed body every time.
  const inputs = answerBodies(users, 1_000).map((body): unknown => JSON.parse(body));
  const hot = new Map<string, number[]>(VARIANTS.map(([name]) => [name, []]));
  const cold = new Map<string, number[]>(VARIANTS.map(([name]) => [name, []]));
  // Rounds interleave the variants, so the machine's load falls on all of them alike.
  for (let round = 0; round < 5; round++)
    for (const [name, check] of VARIANTS) hot.get(name)!.push(hotNsPerCheck(check, inputs, hotN));
  for (const body of answerBodies(users, coldN))
    for (const [name, check] of VARIANTS) cold.get(name)!.push(await coldNs(check, body));
  const keys = median(inputs.map((a) => Object.keys((a as { user: object }).user).length));
  console.log(`user answer check, ${users} users (median ${keys} keys)`);
  console.log(`hot: median of 5 rounds of ${hotN}; cold: ${coldN} checks at 10/s, caches flushed (median [q1-q3])`);
  for (const [name] of VARIANTS) {
    const [q1, q3] = quartiles(cold.get(name)!);
    const us = (ns: number) => (ns / 1000).toFixed(2);
    console.log(
      `${name.padEnd(38)} hot ${us(median(hot.get(name)!))} µs   cold ${us(median(cold.get(name)!))} µs [${us(q1)}-${us(q3)}]`,
    );
  }
}

void main();
