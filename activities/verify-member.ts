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
  if ('skip' in entry) {
    // The export holds the member, but its row cannot be read: nothing to compare, and nothing to look up.
    return { ...frame, verdict: 'failed', reason: `the export's row cannot be read: ${entry.skip}` };
  }
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
