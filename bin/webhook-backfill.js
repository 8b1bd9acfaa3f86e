#!/usr/bin/env node
'use strict';
// `npx webhook-backfill <command>`: the built CLI when there is one (npm run build), else the
// TypeScript sources through tsx.
const fs = require('node:fs');
const path = require('node:path');

const built = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (fs.existsSync(built)) {
  require(built).run();
} else {
  require('tsx/cjs');
  require(path.join(__dirname, '..', 'src', 'cli', 'main.ts')).run();
}
