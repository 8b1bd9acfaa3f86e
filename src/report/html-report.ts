import { OUTAGE_PHASES } from './summary';
import type { Bar, HtmlReportModel } from './html-model';

// The HTML report as one self-contained file: inline CSS, charts as inline SVG, no script, no font, no image or
// link to fetch, and a Content-Security-Policy that forbids loading anything should a later edit try. It lays out
// HtmlReportModel (./html-model.ts) and adds nothing of its own; every text goes through escapeHtml.

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const COLOURS: Record<Bar['tone'], string> = {
  good: '#2f855a',
  bad: '#c53030',
  warn: '#b7791f',
  neutral: '#718096',
};

const BAR_HEIGHT = 22;
const LABEL_WIDTH = 260;
const CHART_WIDTH = 640;

/** A horizontal bar chart; each count also in text, marked `data-count` with its key. */
function barChart(title: string, bars: readonly Bar[]): string {
  if (bars.length === 0) return '<p class="none">none</p>';
  const max = Math.max(1, ...bars.map((b) => b.value));
  const span = CHART_WIDTH - LABEL_WIDTH - 70;
  const rows = bars
    .map((bar, i) => {
      const y = i * (BAR_HEIGHT + 6);
      const width = bar.value === 0 ? 0 : Math.max(2, Math.round((bar.value / max) * span));
      const label = bar.label.length > 40 ? `${bar.label.slice(0, 39)}…` : bar.label;
      return [
        `<g><title>${escapeHtml(`${bar.label}: ${bar.value}`)}</title>`,
        `<text x="${LABEL_WIDTH - 8}" y="${y + 16}" text-anchor="end">${escapeHtml(label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${width}" height="${BAR_HEIGHT}" rx="3" fill="${COLOURS[bar.tone]}"/>`,
        `<text x="${LABEL_WIDTH + width + 6}" y="${y + 16}" data-count="${escapeHtml(bar.key)}">${bar.value}</text></g>`,
      ].join('');
    })
    .join('\n');
  const height = bars.length * (BAR_HEIGHT + 6);
  return `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" xmlns="http://www.w3.org/2000/svg">\n${rows}\n</svg>`;
}

/** Rows recorded per interval as columns, with the start time and the interval below. */
function timelineChart(t: HtmlReportModel['timeline']): string {
  const height = 120;
  const width = CHART_WIDTH;
  const max = Math.max(1, ...t.counts);
  const column = width / t.counts.length;
  const bars = t.counts
    .map((n, i) => {
      const h = n === 0 ? 0 : Math.max(1, Math.round((n / max) * height));
      return `<rect x="${(i * column).toFixed(1)}" y="${height - h}" width="${Math.max(1, column - 2).toFixed(1)}" height="${h}" fill="${COLOURS.good}"><title>${n} rows</title></rect>`;
    })
    .join('');
  return (
    `<p>Rows recorded per ${t.bucketSeconds} s from ${escapeHtml(t.start ?? '')} (highest: ${max}).</p>\n` +
    `<svg class="chart" role="img" aria-label="rows recorded over time" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${bars}</svg>`
  );
}

function table(headers: readonly string[], rows: readonly (readonly (string | number | null)[])[], cls = ''): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${c === null ? '' : escapeHtml(String(c))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>\n${body}\n</section>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans KR", sans-serif; margin: 0; color: #1a202c; background: #f7fafc; }
main { max-width: 980px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 12px; border-bottom: 1px solid #e2e8f0; padding-bottom: 4px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.meta { color: #4a5568; margin: 0; }
.note { background: #fffbea; border-left: 4px solid #b7791f; padding: 8px 12px; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #edf2f7; vertical-align: top; }
th { background: #f7fafc; }
table.facts th { width: 220px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart text { font-size: 12px; fill: #2d3748; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #1a202c; color: #f7fafc; padding: 8px 12px; border-radius: 6px; white-space: pre-wrap; word-break: break-all; }
.none { color: #718096; }
.big { font-size: 28px; font-weight: 600; }
`;

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

export function renderHtmlReport(m: HtmlReportModel, generatedAt: string): string {
  const parts = [
    header(m, generatedAt),
    runSection(m),
    section('outcomes', 'Outcomes', barChart('outcomes per kind', m.outcomes)),
    ...(m.timeline.counts.length > 0 ? [section('timeline', 'Over time', timelineChart(m.timeline))] : []),
    section(
      'fields',
      'Differences per field',
      `<p>A member differing in two fields counts under both.</p>\n${barChart('members differing per field', m.fields)}`,
    ),
    outageSection(m),
    deliveriesSection(m),
    section('deletes', 'Deletes per reason', barChart('deletes per reason', m.deletes)),
    section('delete-guard', 'The delete guard', m.deleteGuard.map((s) => `<p>${escapeHtml(s)}</p>`).join('\n')),
    recheckSection(m),
    ...(m.rateLimit ? [rateLimitSection(m.rateLimit)] : []),
    ...waitsSection(m.waits),
    failuresSection(m),
    section('skipped', 'Skipped per reason', barChart('skipped rows per reason', m.skipped)),
    ...targetSections(m),
    ...(m.verify ? [verifySection(m.verify)] : []),
    nextSection(m),
  ];
  return page(m.title, parts.join('\n'));
}

/** What the run met on Channel Talk's rate limit (issue 24): only with the run's own totals (`--workflow-id`). */
function rateLimitSection(rl: NonNullable<HtmlReportModel['rateLimit']>): string {
  return section(
    'rate-limit',
    "Channel Talk's rate limit",
    `<p>Channel Talk limits each channel, every key together, so the repair shares the budget with the customer's own traffic and leaves it a reserve. The run's own totals (from Temporal): answers 429: <span data-count="rate-limited">${rl.rateLimited}</span>; grace-period warnings: <span data-count="throttle-warnings">${rl.warnings}</span>; time lookups waited for the pacer, summed: <span data-count="pacer-wait-seconds">${rl.waitedSeconds}</span> s. ${escapeHtml(rl.lastSeen)}</p>`,
  );
}

function header(m: HtmlReportModel, generatedAt: string): string {
  return [
    `<header><h1>${escapeHtml(m.title)}</h1><p class="meta">Generated ${escapeHtml(generatedAt)} by webhook-backfill report. Counts, field names, reasons, lines and memberIds only: no email address or phone number.</p>`,
    ...m.notes.map((note) => `<p class="note">${escapeHtml(note)}</p>`),
    '</header>',
  ].join('\n');
}

function runSection(m: HtmlReportModel): string {
  const facts = m.run.map(([label, value]) => `<tr><th>${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`);
  return section('run', 'The run', `<table class="facts"><tbody>\n${facts.join('\n')}\n</tbody></table>`);
}

function outageSection(m: HtmlReportModel): string {
  return section(
    'outage',
    'When Channel Talk last changed what differs',
    `<p>Outage window ${escapeHtml(m.outage.window)}. <em>inside</em>: the outage may have hidden the change; <em>before</em>: already out of sync.</p>\n` +
      table(
        ['', ...OUTAGE_PHASES],
        m.outage.rows.map((r) => [r.label, ...OUTAGE_PHASES.map((p) => r.phases[p])]),
      ),
  );
}

function deliveriesSection(m: HtmlReportModel): string {
  const d = m.deliveries;
  return section(
    'deliveries',
    'Deliveries',
    d.dryRun
      ? `<p>Dry run: nothing was sent. A real run would replay <span data-count="due">${d.due}</span> upserts and deletes.</p>`
      : `<p><span data-count="due">${d.due}</span> replays due (upserts and deletes); accepted, and failed by reason:</p>\n${barChart('deliveries', d.bars)}`,
  );
}

function recheckSection(m: HtmlReportModel): string {
  const r = m.recheck;
  return section(
    'recheck',
    'Members re-checked before a late replay',
    `<p>A replay that waited (REPLAY_RECHECK_AFTER_MS) looks its member up again right before it is sent and sends the fresh decision. Re-checked: <span data-count="rechecked">${r.rechecked}</span>; changed on Channel Talk during the repair: <span data-count="changed-during-repair">${r.changed}</span>.</p>` +
      (r.rows.length > 0
        ? `\n${table(
            ['line', 'memberId', 're-checked at', 'changed', 'how', 'recorded'],
            r.rows.map((x) => [x.line, x.memberId, x.recheckedAt, x.changed ? 'yes' : 'no', x.how, x.outcome]),
          )}`
        : ''),
  );
}

/** The times the run waited for its receiver or store (issue 28): one section with a row each, none if it never did. */
function waitsSection(waits: HtmlReportModel['waits']): string[] {
  if (waits.length === 0) return [];
  return [
    section(
      'waits',
      'Waits for the receiver and the store',
      `<p>While the webhook endpoint answered nobody, or the audit/pending store took no writes, the run waited instead of giving members up: nobody failed for it.</p>\n${table(
        ['what', 'since', 'for', 'until', 'how it ended', 'what waited'],
        waits.map((w) => [w.what, w.since, w.lasted, w.until, w.ended, w.waited]),
      )}`,
    ),
  ];
}

function failuresSection(m: HtmlReportModel): string {
  const f = m.failures;
  const failureTable =
    f.rows.length === 0
      ? '<p class="none">No member failed.</p>'
      : table(
          ['line', 'memberId', 'stage', 'reason', 'HTTP status', 'lookups'],
          f.rows.map((r) => [r.line, r.memberId, r.stage, r.reason, r.status, r.attempts]),
        ) +
        (f.total > f.rows.length
          ? `<p>${f.rows.length} of ${f.total} shown: <code>webhook-backfill report --format csv</code> lists them all.</p>`
          : '');
  return section(
    'failures',
    `Failures (${f.total})`,
    `<p class="big" data-count="failed-total">${f.total}</p>\n${failureTable}`,
  );
}

/** Per scope (WEBHOOK_EVENT_NAMES=scopes) and per registered webhook (target channel-webhooks), when there are any. */
function targetSections(m: HtmlReportModel): string[] {
  const out: string[] = [];
  if (m.scopes.length > 0)
    out.push(
      section(
        'scopes',
        'Deliveries per scope (WEBHOOK_EVENT_NAMES=scopes)',
        barChart('deliveries per scope', m.scopes),
      ),
    );
  if (m.webhooks.length > 0)
    out.push(
      section(
        'webhooks',
        'Per registered webhook',
        table(
          ['webhook', 'upserts', 'deletes', 'delivered', 'failed', 'blocked', 'not v5'],
          m.webhooks.map((w) => [
            w.name ? `${w.id} (${w.name})` : w.id,
            w.upserts,
            w.deletes,
            w.delivered,
            w.failed,
            w.skippedBlocked,
            w.skippedApiVersion,
          ]),
        ),
      ),
    );
  return out;
}

function verifySection(v: NonNullable<HtmlReportModel['verify']>): string {
  return section(
    'verify',
    'Proof of repair (verify run)',
    `<p>${v.total} replayed members looked up again against a fresh export (${escapeHtml(v.source)}).</p>\n` +
      barChart('verdicts', v.bars) +
      (v.stillDiffers.some((b) => b.value > 0)
        ? `\n<h3>Still differs, per field</h3>\n${barChart('still differs per field', v.stillDiffers)}`
        : '') +
      (v.rows.length > 0
        ? `\n<h3>Members to look at</h3>\n${table(
            ['line', 'memberId', 'verdict', 'fields', 'reason'],
            v.rows.map((r) => [r.line, r.memberId, r.verdict, r.fields, r.reason]),
          )}`
        : '\n<p>Every replayed member is repaired.</p>'),
  );
}

function nextSection(m: HtmlReportModel): string {
  return section(
    'next',
    'What to do next',
    m.nextSteps.length === 0
      ? '<p class="none">Nothing left to do.</p>'
      : m.nextSteps.map((s) => `<p>${escapeHtml(s.what)}:</p>\n<pre>${escapeHtml(s.command)}</pre>`).join('\n'),
  );
}

/** The one-file page: a strict CSP (no script, no request), the style inline. */
function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}
