import type { RunWait } from '../audit/run-wait';

// The times a run waited for the customer's side (issue 28), from the waits its audit log holds
// (src/audit/run-wait.ts): each receiver outage as the workflow recorded it, and the store's outages, merged from
// the waits of the batches and replays that met them (several wait through one outage of the store).

export interface ReceiverOutage {
  since: string;
  until: string;
  seconds: number;
  ended: RunWait['ended'];
  /** Replays held back for the endpoint when it ended, and batches not done (none started meanwhile). */
  waitingReplays: number | null;
  batchesLeft: number | null;
}

export interface StoreOutage {
  since: string;
  until: string;
  seconds: number;
  /** Batches and replays that stopped sending and waited for the store through it. */
  batches: number;
  replays: number;
}

export interface WaitsSummary {
  receiver: ReceiverOutage[];
  store: StoreOutage[];
  /** The outages' lengths summed, per kind. */
  receiverSeconds: number;
  storeSeconds: number;
}

const seconds = (since: string, until: string) => Math.max(0, (Date.parse(until) - Date.parse(since)) / 1000);

/** Receiver outages in time order; store waits that overlap (or touch) merged into one outage each. */
export function summarizeWaits(waits: readonly RunWait[]): WaitsSummary {
  const byStart = [...waits].sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
  const receiver: ReceiverOutage[] = byStart
    .filter((w) => w.kind === 'receiver-unavailable')
    .map((w) => ({
      since: w.since,
      until: w.until,
      seconds: seconds(w.since, w.until),
      ended: w.ended,
      waitingReplays: w.waitingReplays ?? null,
      batchesLeft: w.batchesLeft ?? null,
    }));
  const store: StoreOutage[] = [];
  for (const w of byStart) {
    if (w.kind !== 'store-unavailable') continue;
    const last = store.at(-1);
    const batch = w.batch !== undefined ? 1 : 0;
    const replay = w.batch === undefined ? 1 : 0;
    if (last && Date.parse(w.since) <= Date.parse(last.until)) {
      if (Date.parse(w.until) > Date.parse(last.until)) last.until = w.until;
      last.seconds = seconds(last.since, last.until);
      last.batches += batch;
      last.replays += replay;
    } else {
      store.push({
        since: w.since,
        until: w.until,
        seconds: seconds(w.since, w.until),
        batches: batch,
        replays: replay,
      });
    }
  }
  const sum = (list: { seconds: number }[]) => list.reduce((total, o) => total + o.seconds, 0);
  return { receiver, store, receiverSeconds: sum(receiver), storeSeconds: sum(store) };
}

/** How an outage ended, in words. */
export const ENDED_TEXT: Record<RunWait['ended'], string> = {
  answered: 'the endpoint answered again',
  paused: 'the run paused itself (receiverOutagePauseSeconds)',
  resumed: 'a resume tried the endpoint afresh',
  'nothing-waiting': 'no replay was left to probe it',
  back: 'the store took writes again',
};

/** Seconds as `1 h 2 min 3 s`, `4 min 5 s`, `6.7 s`. */
export function formatSeconds(total: number): string {
  if (total < 60) return `${total < 10 ? total.toFixed(1) : Math.round(total)} s`;
  const s = Math.round(total);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h} h ${m} min ${rest} s` : `${m} min ${rest} s`;
}

/** One line per outage, for the text report (the HTML report uses the same words). */
export function describeWaits(w: WaitsSummary): string[] {
  const lines: string[] = [];
  for (const o of w.receiver) {
    const what = [
      o.waitingReplays !== null ? `${o.waitingReplays} replays waited` : undefined,
      o.batchesLeft !== null ? `${o.batchesLeft} batches not started meanwhile` : undefined,
    ].filter((x) => x !== undefined);
    lines.push(
      `receiver unavailable since ${o.since} for ${formatSeconds(o.seconds)}, until ${o.until}: ${ENDED_TEXT[o.ended]}${what.length ? `; ${what.join(', ')}` : ''}`,
    );
  }
  for (const o of w.store) {
    const who = [o.batches ? `${o.batches} batches` : '', o.replays ? `${o.replays} replays` : '']
      .filter(Boolean)
      .join(' and ');
    lines.push(
      `audit/pending store unavailable since ${o.since} for ${formatSeconds(o.seconds)}, until ${o.until}: ${who} stopped sending and waited`,
    );
  }
  return lines;
}
