import { describeChannel } from '../channel/channel-info';
import type { ChannelPace, Progress } from '../../workflows/definitions';
import { formatDuration } from '../domain/duration';
import { VERDICTS, type VerdictCounts } from '../domain/verdicts';

// The `status` line: a bar, counts, the rate in members/s and the ETA. Pure functions of the progress
// query's answers, so they are tested without a server.

/**
 * Members/s over a sliding window of samples. The workflow counts a batch when it completes, so the
 * counter moves in steps; a window of several batches smooths that out.
 */
export class RateMeter {
  private samples: { at: number; processed: number }[] = [];

  constructor(private readonly windowMs = 30_000) {}

  /** Records the counter at a time (ms). A pause restarts the window: waiting is not slowness. */
  sample(at: number, processed: number, paused = false): void {
    if (paused) {
      this.samples = [];
      return;
    }
    const last = this.samples[this.samples.length - 1];
    if (last && processed < last.processed) this.samples = []; // a new run under the same id
    this.samples.push({ at, processed });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
  }

  /** Members/s, or null until the window spans a second and the counter has moved. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 1000) return null;
    const moved = last.processed - first.processed;
    if (moved <= 0) return first.processed > 0 || last.at - first.at >= this.windowMs ? 0 : null;
    return (moved * 1000) / (last.at - first.at);
  }
}

/** Seconds left at the rate, or null when it cannot be told. */
export function etaSeconds(p: Pick<Progress, 'total' | 'processed'>, rate: number | null): number | null {
  if (rate === null || rate <= 0 || p.total <= 0) return null;
  return Math.max(0, (p.total - p.processed) / rate);
}

export function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 10 ? rate.toFixed(1) : rate.toFixed(2);
}

export interface RenderOptions {
  rate: number | null;
  /** Characters of the bar; 0 for none. */
  barWidth: number;
  /** Trim the line to this many columns (a terminal's width) so it redraws in place. */
  columns?: number;
  /** Unicode blocks for terminals; ASCII for logs. */
  unicode?: boolean;
}

export function renderBar(fraction: number, width: number, unicode = true): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const full = Math.round(clamped * width);
  return unicode ? `${'█'.repeat(full)}${'░'.repeat(width - full)}` : `${'#'.repeat(full)}${'.'.repeat(width - full)}`;
}

/** One line of progress for a running backfill. */
export function renderProgress(p: Progress, o: RenderOptions): string {
  const parts: string[] = [];
  if (p.dryRun) parts.push('dry run');
  if (p.total === 0 && !p.done) {
    parts.push('preparing: reading the member source');
  } else if (p.readingSource) {
    // The total is only a lower bound while the rest of the source is read: no bar, no percent, no ETA.
    parts.push(`${p.processed}/${p.total}+ (the source is still being read)`);
    if (p.paused) parts.push(`PAUSED${p.pauseReason ? `: ${p.pauseReason}` : ''}`);
    else parts.push(o.rate === null ? '…/s' : `${formatRate(o.rate)}/s`);
  } else {
    const fraction = p.total > 0 ? p.processed / p.total : 1;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    if (o.barWidth > 0) parts.push(`[${renderBar(fraction, o.barWidth, o.unicode ?? true)}]`);
    parts.push(`${percent} ${p.processed}/${p.total}`);
    if (p.paused) {
      parts.push(`PAUSED${p.pauseReason ? `: ${p.pauseReason}` : ''}`);
    } else if (p.done) {
      parts.push('done');
    } else {
      parts.push(o.rate === null ? '…/s' : `${formatRate(o.rate)}/s`);
      const eta = etaSeconds(p, o.rate);
      parts.push(`ETA ${eta === null ? '…' : formatDuration(eta)}`);
    }
  }
  parts.push(p.verify ? describeVerdicts(p.verify) : describeOutcomes(p));
  if (p.changedDuringRepair) parts.push(`changed on Channel Talk during the repair ${p.changedDuringRepair}`);
  if (p.receiverUnavailable) {
    // No lookups start while it lasts; the replays wait for it without using up their attempts.
    parts.push(`RECEIVER UNAVAILABLE since ${p.receiverUnavailable.since}, no lookups`);
  }
  if (p.pendingReplays > 0) parts.push(`${p.pendingReplays} ${p.pendingReplays === 1 ? 'replay' : 'replays'} retrying`);
  if (p.channelPace) parts.push(describeChannelPace(p.channelPace));
  // Runs started before the channel check answer no `channel`.
  const channel = p.channel;
  if (channel && typeof channel.id === 'string') parts.push(describeChannel(channel));
  return fitColumns(parts.join('  '), o.columns);
}

/** A repair's (or dry run's) counts. */
function describeOutcomes(p: Progress): string {
  return `upserts ${p.upserts} deletes ${p.deletes} unchanged ${p.unchanged} failed ${p.failed} skipped ${p.skipped}`;
}

/** A verify run's counts are its verdicts (the outcomes they are stored under would say "upserts" for "still differs"). */
function describeVerdicts(verdicts: VerdictCounts): string {
  return VERDICTS.map((verdict) => `${verdict} ${verdicts[verdict]}`).join(' ');
}

/** The channel's rate limit as the last batch saw it (issue 24): rate, remaining of the limit, giving way, 429s. */
export function describeChannelPace(c: ChannelPace): string {
  const bucket = c.limit === null ? '' : ` remaining ${c.remaining ?? '?'}/${c.limit}`;
  const met = [
    c.givingWay ? 'GIVING WAY to other traffic' : '',
    c.rateLimited ? `${c.rateLimited}×429` : '',
    c.warnings ? `${c.warnings} grace warnings` : '',
  ].filter(Boolean);
  return `API ${formatRate(c.ratePerSecond)}/s${bucket}${met.length ? ` ${met.join(' ')}` : ''}`;
}

/** Cuts a line to fit a terminal of `columns` (one spare, so it never wraps and `\r` redraws it in place). */
export function fitColumns(line: string, columns: number | undefined): string {
  if (columns === undefined || columns < 2 || line.length <= columns - 1) return line;
  return `${line.slice(0, columns - 2)}…`;
}

/** How often a log (no terminal) gets a line while the progress moves, and at least how often while it does not. */
export const LOG_INTERVAL_MS = 5_000;
export const LOG_HEARTBEAT_MS = 60_000;

/**
 * What to write for each progress update. On a terminal: the line redrawn in place (`\r`, cleared to its end). In a
 * file, a CI log or `docker logs` (no terminal), carriage-return updates would pile up into one endless line: a plain
 * line instead, stamped, when at least `intervalMs` passed since the last one and the line changed, at least once per
 * `heartbeatMs` while it does not, and always the final one; updates in between write nothing (as npm and docker do).
 */
export class ProgressOutput {
  private printed: string | undefined;
  private printedAt = Number.NEGATIVE_INFINITY;
  /** A terminal line is drawn and not yet ended by a line feed. */
  private drawn = false;

  constructor(
    private readonly o: {
      tty: boolean;
      intervalMs?: number;
      heartbeatMs?: number;
      /** The terminal's width: a redrawn line must fit it or `\r` would not return to its start. */
      columns?: number;
      /** The stamp a log line starts with (e.g. the time); none by default. */
      stamp?: (at: number) => string;
    },
  ) {}

  /** The text to write for `line` at time `at` (ms); '' when nothing is due. `final`: the last update. */
  update(line: string, at: number, final = false): string {
    if (this.o.tty) {
      this.drawn = !final;
      return `\r\x1b[K${final ? line : fitColumns(line, this.o.columns)}${final ? '\n' : ''}`;
    }
    const since = at - this.printedAt;
    const due =
      final ||
      (line !== this.printed && since >= (this.o.intervalMs ?? LOG_INTERVAL_MS)) ||
      since >= (this.o.heartbeatMs ?? LOG_HEARTBEAT_MS);
    if (!due) return '';
    this.printed = line;
    this.printedAt = at;
    return `${this.o.stamp ? `${this.o.stamp(at)}  ` : ''}${line}\n`;
  }

  /** What ends the output early (an error, Ctrl-C): a line feed after a drawn terminal line, else nothing. */
  end(): string {
    const text = this.drawn ? '\n' : '';
    this.drawn = false;
    return text;
  }
}
