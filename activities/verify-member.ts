import { recordChangeTimes, type VerdictEntry } from '../src/audit/audit-entry';
import type { VerifyEntry } from '../src/domain/types';
import { verdict, type VerifyOptions } from '../src/domain/verdict';
import type { ChannelClient } from '../src/channel/client';
import type { RateLimiter } from '../src/channel/rate-limiter';

/** What a verify run needs of its batch: a lookup, never a target (nothing is ever sent). */
export interface VerifyContext {
  backfill: string;
  runLabel: string;
  channel: ChannelClient;
  limiter: RateLimiter;
  signal: AbortSignal;
  now: () => Date;
  verifyOptions: VerifyOptions;
}

/**
 * One member of a verify run: looked up again (same rate budget as a repair) and recorded with its verdict. There
 * is no target in reach: a verify run cannot replay. Throws BadCredentialsError and aborts like repairMember (the
 * member stays unrecorded and is done again).
 */
export async function verifyMember(entry: VerifyEntry, ctx: VerifyContext): Promise<VerdictEntry> {
  const memberId = 'member' in entry ? entry.member.memberId : (entry.memberId ?? '');
  const { repair } = entry;
  const frame: Omit<VerdictEntry, 'verdict'> = {
    ts: ctx.now().toISOString(),
    backfill: ctx.backfill,
    runLabel: ctx.runLabel,
    line: entry.line,
    memberId,
    dryRun: true,
    repairedEvent: repair.event,
    repairedAt: new Date(repair.deliveredAt).toISOString(),
  };
  if (entry.exportLine !== undefined) frame.exportLine = entry.exportLine;
  if ('skip' in entry) return { ...frame, verdict: 'failed', reason: unreadReason(entry) };
  const fetched = await ctx.channel.getUserByMemberId(memberId, { limiter: ctx.limiter, signal: ctx.signal });
  frame.attempts = fetched.attempts;
  if (fetched.kind === 'found') recordChangeTimes(frame, fetched.user);
  const result = verdict(repair, entry.absent ? undefined : entry.member, fetched, ctx.verifyOptions);
  const found: VerdictEntry = { ...frame, verdict: result.verdict };
  if ('fields' in result && result.fields) found.fields = result.fields;
  if ('reason' in result && result.reason !== undefined) found.reason = result.reason;
  if (result.verdict === 'failed') found.stage = 'fetch';
  return found;
}

/**
 * Nothing to compare, and nothing to look up: the export holds the member but its row cannot be read (`skip` is the
 * row's problem), or its readable rows do not hold it while some could not be read (`skip` names them).
 */
function unreadReason(entry: VerifyEntry & { skip: string }): string {
  if (entry.exportLine === undefined) return `not among the export's readable rows: ${entry.skip}`;
  return `the export's row cannot be read: ${entry.skip}`;
}
