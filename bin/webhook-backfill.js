#!/usr/bin/env node
'use strict';
// `npx webhook-backfill <command>`: the built CLI when there is one (npm run build) and nothing the build reads
// changed after it, else the TypeScript sources through tsx: a checkout whose dist/ predates an edit would
// otherwise run the old code without a word.
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, newestSourceMs } = require('../scripts/source-freshness.js');

const built = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newestSourceMs()) {
  require(built).run();
} else {
  require('tsx/cjs');
  require(path.join(ROOT, 'src', 'cli', 'main.ts')).run();
}
