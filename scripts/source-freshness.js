// When the sources were last changed, for the two places that choose between dist/ and the sources: `npm run
// worker` (scripts/build-if-stale.js) and `npx webhook-backfill` (bin/webhook-backfill.js). Plain CommonJS with no
// dependencies so the check itself costs a few tens of milliseconds.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
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

/** The newest modification time (ms) of anything the build reads. */
function newestSourceMs() {
  return Math.max(...INPUTS.map((p) => newest(path.join(ROOT, p))));
}

module.exports = { ROOT, newestSourceMs };
