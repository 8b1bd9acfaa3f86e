// Summarises V8 CPU profiles (`node --cpu-prof`, one .cpuprofile per thread) into where the JavaScript time
// went: self time per category (Temporal SDK, HTTP client, JSON, zod, phone parsing, file system, project
// code, garbage collection, idle...) and the heaviest functions. Native threads (the Temporal core's Rust
// runtime, libuv's pool) are not in these profiles: bench/measure.ts reads their CPU from /proc per thread.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers, ms. */
  spanMs: number;
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  categories: Array<{ category: string; ms: number; share: number }>;
  functions: Array<{ fn: string; ms: number; share: number }>;
  /**
   * Inclusive ("total") time of the project's own functions (src/, activities/, bench/): the busy time during
   * which the function was on the stack, callees included. This is where the time goes, by the project's code.
   */
  projectInclusive: Array<{ fn: string; ms: number; share: number }>;
  /**
   * Busy time by the nearest project file on the stack (walking from the sampled frame to the root), so time in
   * libraries and bindings called synchronously by, say, the audit store counts as the audit store's. Samples with
   * no project frame (callbacks of sockets and timers, the SDK's own work, GC) keep their leaf category.
   */
  byCaller: Array<{ caller: string; ms: number; share: number }>;
}

const PROJECT_URL = /\/(src|activities|bench|workflows)\/[^/]+(\/[^/]+)?\.(ts|js)$/;

/** Which part of the stack a frame belongs to, from its script URL and name. */
export function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'V8/native (program)';
  if (functionName === '(root)') return '(root)';
  if (url === '' && /^(parse|stringify)$/.test(functionName)) return 'JSON';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (nm) {
    if (nm.startsWith('@temporalio/')) return `Temporal SDK (${nm.slice('@temporalio/'.length)})`;
    if (nm === 'undici') return 'HTTP client (undici)';
    if (nm === 'libphonenumber-js') return 'phone parsing (libphonenumber-js)';
    if (nm === 'zod') return 'validation (zod)';
    if (nm === 'csv-parse') return 'CSV parsing (csv-parse)';
    if (nm === 'tsx' || nm === 'esbuild' || nm === 'get-tsconfig') return 'tsx loader';
    if (nm === 'source-map-support' || nm === 'source-map') return 'source maps';
    return `other npm (${nm})`;
  }
  if (url.startsWith('node:internal/fs') || url.includes('internal/fs/')) return 'node fs';
  if (/node:internal\/(http|_http|streams|net|stream_base|dns|tls)|node:(http|net|_http)/.test(url))
    return 'node net/http/streams';
  if (url.startsWith('node:')) return 'node internals (other)';
  if (/\/(activities)\//.test(url)) return 'project activities';
  if (/\/src\/audit\//.test(url)) return 'project audit store';
  if (/\/src\/source\//.test(url)) return 'project source/work file';
  if (/\/src\/webhook\//.test(url)) return 'project webhook sender';
  if (/\/src\/channel\//.test(url)) return 'project channel client';
  if (/\/(src|bench)\//.test(url)) return 'project (other)';
  if (/\/workflows\//.test(url) || /webpack|workflow-bundle/.test(url)) return 'workflow code (bundle)';
  if (url === '') return 'V8 builtins';
  return 'other';
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const cat = categoryOf(node.callFrame);
    if (cat === '(idle)') {
      idle += us;
      continue;
    }
    cats.set(cat, (cats.get(cat) ?? 0) + us);
    const where = node.callFrame.url ? `${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : '';
    const fn = `${node.callFrame.functionName || '(anonymous)'}${where ? ` ${where}` : ''} [${cat}]`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const busy = total - idle;
  // Inclusive time of project functions: each sample's stack, each function counted once per sample.
  const inclusive = new Map<string, number>();
  const byCaller = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    let caller: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame || !PROJECT_URL.test(frame.url) || frame.url.includes('/node_modules/')) continue;
      const short = frame.url.replace(/^.*\/(src|activities|bench|workflows)\//, '$1/');
      caller ??= short.replace(/\.(ts|js)$/, '');
      const key = `${frame.functionName || '(anonymous)'} ${short}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
    const leaf = byId.get(id)?.callFrame;
    const bucket = caller ?? (leaf ? categoryOf(leaf) : 'other');
    if (bucket !== '(idle)') byCaller.set(bucket, (byCaller.get(bucket) ?? 0) + us);
  }
  const rank = (m: Map<string, number>, limit = top) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([k, us]) => ({ k, ms: us / 1000, share: busy > 0 ? us / busy : 0 }));
  return {
    file: path.basename(file),
    spanMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busy / 1000,
    categories: rank(cats).map(({ k, ms, share }) => ({ category: k, ms, share })),
    functions: rank(fns).map(({ k, ms, share }) => ({ fn: k, ms, share })),
    byCaller: rank(byCaller, top * 3).map(({ k, ms, share }) => ({ caller: k, ms, share })),
    projectInclusive: [...inclusive.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top * 2)
      .map(([fn, us]) => ({ fn, ms: us / 1000, share: busy > 0 ? us / busy : 0 })),
  };
}

/** Every profile in `dir`, busiest first (tsx's launcher process writes one too; it is nearly idle). */
export function summarizeProfiles(dir: string, top = 12): ProfileSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.map((f) => summarizeProfile(path.join(dir, f), top)).sort((a, b) => b.busyMs - a.busyMs);
}
