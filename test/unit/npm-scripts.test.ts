// package.json's scripts: `npm run worker` (what people run first) is the shipped worker, not a slower variant.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const scripts = (
  JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

describe('npm scripts', () => {
  it('worker builds only when dist/ is stale, then runs exactly `npm start`', () => {
    expect(scripts.worker).toBe('node scripts/build-if-stale.js && npm start --silent');
    expect(scripts.start).toMatch(/^(\w+=\S+ )*node (--\S+ )*dist\/src\/worker\.js$/);
  });
  it('keeps the TypeScript worker for development, and the sweep', () => {
    expect(scripts['worker:tsx']).toBe('tsx src/worker.ts');
    expect(scripts['bench:sweep']).toBe('tsx bench/sweep.ts');
  });
});
