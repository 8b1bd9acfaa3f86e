// What a run shows in the Temporal Web UI: a memo with its fixed facts, "current details" that follow
// its progress, and search attributes to filter runs by. Only counts and statuses: never personal data.
import { patched, setCurrentDetails, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { CarriedState, ChannelPace, Counters } from './definitions';
import { runCounters } from './backfill-state';
import { formatDuration } from '../src/domain/duration';
import { sourceLabel } from '../src/domain/source-label';
import { VERDICTS, type VerdictCounts } from '../src/domain/verdicts';
import { searchAttributesDue, type BackfillStatus } from './search-attribute-upserts';

export type { BackfillStatus } from './search-attribute-upserts';

// Runs recorded before the Web UI work must replay without the commands these calls add.
const VISIBILITY_PATCH = 'web-ui-visibility-v1';
// No progress-only search-attribute upserts while the total is only the rows read so far (search-attribute-upserts.ts):
// runs recorded before upserted after almost every batch then, and replay so.
const KNOWN_TOTAL_STEP_PATCH = 'search-attributes-known-total-v1';

export function describeStatic(s: CarriedState): void {
  if (!patched(VISIBILITY_PATCH)) return;
  const { options } = s.prepared;
  upsertMemo({
    // Runs prepared before source kinds named themselves: the same label, from the input.
    source: s.prepared.sourceLabel ?? sourceLabel(options.source as { type: string; path?: string; table?: string }),
    dryRun: options.dryRun,
    runLabel: options.runLabel,
    rows: s.prepared.rows,
    batches: s.prepared.batches,
    target: options.target?.type ?? 'url',
    // Only on verify runs: the memo of every other run stays as it was (and its history replays).
    ...(options.verifyAfter ? { verifyAfter: options.verifyAfter.auditPath } : {}),
  });
}

export interface LiveView {
  startedAtMs: number;
  startProcessed: number;
  lastStatus?: BackfillStatus;
  lastPublishedProcessed: number;
}

/**
 * Keeps the Web UI's view current; search attributes change only on a status change or every 5% of a known total
 * (searchAttributesDue).
 */
export function publish(
  s: CarriedState,
  view: LiveView,
  status: BackfillStatus,
  nowMs: number,
  registered: boolean,
  lastError: string | null,
): void {
  if (!patched(VISIBILITY_PATCH)) return;
  const c = runCounters(s);
  const total = s.prepared.rows;
  // Workflow time (replay-safe: the SDK's sandbox makes Date.now() deterministic).
  const seconds = Math.max(0.001, (nowMs - view.startedAtMs) / 1000);
  const rate = (c.processed - view.startProcessed) / seconds;
  const left = total - c.processed;
  const eta = rate > 0 && left > 0 ? `${formatDuration(left / rate)}` : '—';
  // Compact on purpose: the Web UI shows current details in a small panel (a heading line, then a list).
  // The webhook endpoint down for everyone: since when and for how long (workflow time), what waits for it.
  const outage = s.receiverDown
    ? ` · receiver unavailable since ${s.receiverDown.since} (${formatDuration(Math.max(0, nowMs - Date.parse(s.receiverDown.since)) / 1000)}), ${s.deferred.length} replays waiting for it`
    : '';
  const headline = `**${status}**${s.paused && s.pauseReason ? `: ${s.pauseReason}` : ''}${outage}${lastError ? ` · last error: ${lastError}` : ''}`;
  const items = [
    s.prepared.normalising
      ? // The total is a lower bound while the rest of the source is read beside the batches: no percent, no ETA.
        `processed **${c.processed} / ${total}+** (the source is still being read), ${rate.toFixed(1)} members/s · batch ${s.batchesDone} · run ${s.runs}`
      : `processed **${c.processed} / ${total}** (${total ? Math.floor((c.processed / total) * 100) : 100}%), ${rate.toFixed(1)} members/s, ETA ${eta} · batch ${s.batchesDone} / ${s.prepared.batches} · run ${s.runs}`,
    ...(s.verify
      ? [verdictLine(s.verify.verdicts), fieldLine(c, 'still differs per field')]
      : [
          `upserts ${c.upserts} · deletes ${c.deletes} · unchanged ${c.unchanged} · failed ${c.failed} · skipped ${c.skipped} · replays waiting ${s.deferred.length}${c.changedDuringRepair ? ` · changed on Channel Talk during the repair ${c.changedDuringRepair}` : ''}`,
          fieldLine(c, 'fields'),
        ]),
    s.channelPace ? channelPaceLine(s.channelPace) : '',
  ].filter(Boolean);
  setCurrentDetails(`${headline}\n\n${items.map((item) => `- ${item}`).join('\n')}`);
  if (!registered) return;
  const moment = {
    status,
    lastStatus: view.lastStatus,
    processed: c.processed,
    lastPublishedProcessed: view.lastPublishedProcessed,
    total,
    totalKnown: s.prepared.normalising !== true,
  };
  if (!searchAttributesDue(moment, () => patched(KNOWN_TOTAL_STEP_PATCH))) return;
  view.lastStatus = status;
  view.lastPublishedProcessed = c.processed;
  upsertSearchAttributes({ BackfillStatus: [status], BackfillProcessed: [c.processed], BackfillFailed: [c.failed] });
}

/** The channel's rate limit as the last batch saw it (issue 24), for the Web UI. */
function channelPaceLine(p: ChannelPace): string {
  const bucket = p.limit === null ? 'no rate-limit headers' : `remaining ${p.remaining ?? '?'} / ${p.limit}`;
  return (
    `Channel Talk: ${p.ratePerSecond.toFixed(1)} lookups/s · ${bucket}${p.givingWay ? ' · **giving way to other traffic**' : ''}` +
    ` · 429s ${p.rateLimited} · grace warnings ${p.warnings} · waited ${formatDuration(p.waitedMs / 1000)}`
  );
}

/** A verify run's verdict counts. */
function verdictLine(counts: VerdictCounts): string {
  return `verify: ${VERDICTS.map((v) => `${v} ${counts[v]}`).join(' · ')}`;
}

function fieldLine(c: Counters, label: string): string {
  if (!c.fields) return '';
  // In the counters' own order (zeroFields), so a compared field added to the member row shows up here unasked.
  return `${label}: ${Object.entries(c.fields)
    .map(([field, count]) => `${field} ${count}`)
    .join(' · ')}`;
}
