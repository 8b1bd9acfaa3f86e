#!/usr/bin/env node
// `npm run worker`: builds the worker (`npm run build`: tsc + the workflow bundle) when ./dist is missing or older
// than any source, then `npm start` runs exactly what ships. The development command used to be `tsx src/worker.ts`,
// which carries tsx's launcher and in-process transforms and webpacks the workflow at every start (BENCHMARKS.md:
// ~370 MB before any work, slower per member); now it is the shipped worker, rebuilt only when needed.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { ROOT, newestSourceMs } = require('./source-freshness.js');

const STAMP = path.join(ROOT, 'dist', '.build-stamp');

function stampTime() {
  try {
    return fs.statSync(STAMP).mtimeMs;
  } catch {
    return -1;
  }
}

const sources = newestSourceMs();
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
