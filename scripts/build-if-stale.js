#!/usr/bin/env node
// `npm run worker`: builds the worker (`npm run build`: tsc + the workflow bundle) when ./dist is missing or older
// than any source, then `npm start` runs exactly what ships. The development command used to be `tsx src/worker.ts`,
// which carries tsx's launcher and in-process transforms and webpacks the workflow at every start (BENCHMARKS.md:
// ~370 MB before any work, slower per member); now it is the shipped worker, rebuilt only when needed.
// Plain CommonJS with no dependencies so the check itself costs a few tens of milliseconds.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const STAMP = path.join(ROOT, 'dist', '.build-stamp');
const INPUTS = [
  'src',
  'workflows',
  'activities',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
  'package-lock.json',
];

/** The newest modification time (ms) under `p`, a file or a directory tree; 0 when it does not exist. */
function newest(p) {
  let stat;
  try {
    stat = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let max = stat.mtimeMs; // a deleted file shows as a newer directory
  for (const name of fs.readdirSync(p)) max = Math.max(max, newest(path.join(p, name)));
  return max;
}

function stampTime() {
  try {
    return fs.statSync(STAMP).mtimeMs;
  } catch {
    return -1;
  }
}

const sources = Math.max(...INPUTS.map((p) => newest(path.join(ROOT, p))));
if (stampTime() >= sources) process.exit(0);

const started = new Date();
console.error('webhook-backfill: dist/ is missing or older than the sources; running `npm run build` once');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    `webhook-backfill: the build failed (exit ${r.status ?? r.signal}); fix it, or run \`npm run worker:tsx\``,
  );
  process.exit(r.status || 1);
}
// The stamp carries the build's start time: a source saved during the build still counts as newer.
fs.writeFileSync(STAMP, `built ${started.toISOString()}\n`);
fs.utimesSync(STAMP, started, started);
