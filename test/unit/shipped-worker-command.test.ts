import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shippedWorkerCommand } from '../../dev/shipped-worker-command';

function packageJson(start: string | undefined): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'worker-command-'));
  const file = path.join(dir, 'package.json');
  writeFileSync(file, JSON.stringify({ name: 'webhook-backfill', scripts: start === undefined ? {} : { start } }));
  return file;
}

describe('shippedWorkerCommand', () => {
  it.each([
    ['node dist/src/worker.js', { env: {}, nodeArgs: [], entry: 'dist/src/worker.js' }],
    [
      'MALLOC_ARENA_MAX=2 A=x=y node --max-old-space-size=128 --no-allocation-site-pretenuring dist/src/worker.js',
      {
        env: { MALLOC_ARENA_MAX: '2', A: 'x=y' },
        nodeArgs: ['--max-old-space-size=128', '--no-allocation-site-pretenuring'],
        entry: 'dist/src/worker.js',
      },
    ],
  ])('reads %j', (start, expected) => {
    expect(shippedWorkerCommand(packageJson(start))).toEqual(expected);
  });

  it.each([
    [undefined, /no "start" script/],
    ['tsx src/worker.ts', /must run node/],
    ['node --inspect', /must end with the entry file/],
    ['node a.js b.js', /must end with the entry file/],
  ])('refuses %j, naming the file', (start, message) => {
    const file = packageJson(start);
    expect(() => shippedWorkerCommand(file)).toThrow(message);
    expect(() => shippedWorkerCommand(file)).toThrow(file);
  });

  it("is this package's own start script", () => {
    const shipped = shippedWorkerCommand();
    expect(shipped.entry).toBe('dist/src/worker.js');
    expect(shipped.nodeArgs.length).toBeGreaterThan(0);
  });
});
