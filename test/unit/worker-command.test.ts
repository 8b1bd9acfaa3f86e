import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot, shippedWorkerCommand, workerInvocation } from '../../src/worker-command';

const SHIPPED = { env: { MALLOC_ARENA_MAX: '2' }, nodeArgs: ['--max-old-space-size=128'], entry: 'dist/src/worker.js' };

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

describe('packageRoot', () => {
  it('finds the package from src/ and from a nested directory below it', () => {
    const root = packageRoot();
    expect(path.basename(path.join(root, 'package.json'))).toBe('package.json');
    expect(packageRoot(path.join(root, 'src', 'cli', 'commands'))).toBe(root);
  });

  it('skips a package.json of another package on the way up', () => {
    const root = path.dirname(packageJson('node dist/src/worker.js'));
    const nested = path.join(root, 'node_modules', 'other');
    mkdirSync(nested, { recursive: true });
    writeFileSync(path.join(nested, 'package.json'), JSON.stringify({ name: 'other' }));
    expect(packageRoot(nested)).toBe(root);
  });
});

describe('workerInvocation', () => {
  it.each([
    [
      'built: the entry under the root, with the node options',
      undefined,
      ['--max-old-space-size=128', '/r/dist/src/worker.js'],
    ],
    [
      'unbuilt: the same options on src/worker.ts through tsx',
      '/t/cjs',
      ['--max-old-space-size=128', '--require', '/t/cjs', '/r/src/worker.ts'],
    ],
  ])('%s', (_name, tsxCjs, args) => {
    expect(workerInvocation('/r', SHIPPED, {}, tsxCjs).args).toEqual(args);
  });

  it.each([
    [{}, '2'],
    [{ MALLOC_ARENA_MAX: '8' }, '8'],
  ])("takes npm start's variables unless already set (%j)", (env, arena) => {
    const r = workerInvocation('/r', SHIPPED, { ...env, CHANNEL_ACCESS_KEY: 'k' });
    expect(r.env.MALLOC_ARENA_MAX).toBe(arena);
    expect(r.env.CHANNEL_ACCESS_KEY).toBe('k');
  });
});
