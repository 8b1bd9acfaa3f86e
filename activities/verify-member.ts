import { recordChangeTimes, type AuditEntry } from '../src/audit/audit-entry';
import type { VerifyEntry } from '../src/domain/types';
import { verdict, type VerifyOptions } from '../src/domain/verdict';
import { VERDICT_OUTCOMES } from '../src/domain/verdicts';
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
export async function verifyMember(entry: VerifyEntry, ctx: VerifyContext): Promise<AuditEntry> {
  const memberId = 'member' in entry ? entry.member.memberId : (entry.memberId ?? '');
  const { repair } = entry;
  const base: AuditEntry = {
    ts: ctx.now().toISOString(),
    backfill: ctx.backfill,
    runLabel: ctx.runLabel,
    line: entry.line,
    memberId,
    outcome: 'failed',
    dryRun: true,
    repairedEvent: repair.event,
    repairedAt: new Date(repair.deliveredAt).toISOString(),
  };
  if (entry.exportLine !== undefined) base.exportLine = entry.exportLine;
  if ('skip' in entry) {
    // The export holds the member, but its row cannot be read: nothing to compare, and nothing to look up.
    base.verdict = 'failed';
    base.reason = `the export's row cannot be read: ${entry.skip}`;
    return base;
  }
  const fetched = await ctx.channel.getUserByMemberId(memberId, { limiter: ctx.limiter, signal: ctx.signal });
  base.attempts = fetched.attempts;
  if (fetched.kind === 'found') recordChangeTimes(base, fetched.user);
  const result = verdict(repair, entry.absent ? undefined : entry.member, fetched, ctx.verifyOptions);
  base.verdict = result.verdict;
  base.outcome = VERDICT_OUTCOMES[result.verdict];
  if ('fields' in result && result.fields) base.fields = result.fields;
  if ('reason' in result && result.reason !== undefined) base.reason = result.reason;
  if (result.verdict === 'failed') base.stage = 'fetch';
  return base;
}
