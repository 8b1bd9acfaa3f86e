import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnder } from '../../src/path-confinement';

// Where a path really is, on a real file system: symlinks and `..` resolved through the deepest existing parent.
let root: string;
let data: string;
let outside: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'confine-'));
  data = path.join(root, 'data');
  outside = path.join(root, 'outside');
  await mkdir(path.join(data, 'runs'), { recursive: true });
  await mkdir(outside);
  await symlink(outside, path.join(data, 'out-link'));
  await symlink(path.join(data, 'runs'), path.join(outside, 'in-link'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('isUnder', () => {
  it.each<[string, () => string, boolean]>([
    ['a file in the data dir', () => path.join(data, 'audit.jsonl'), true],
    ['a file in a directory not made yet', () => path.join(data, 'new', 'deeper', 'audit.jsonl'), true],
    ['the data dir itself (names no file)', () => data, false],
    ['an absolute path elsewhere', () => '/etc/x.jsonl', false],
    ['a ../ escape', () => `${data}/../outside/x.jsonl`, false],
    ['a ../ that stays inside', () => `${data}/runs/../audit.jsonl`, true],
    ['a symlink out of the data dir', () => path.join(data, 'out-link', 'x.jsonl'), false],
    ['a symlink from elsewhere into the data dir', () => path.join(outside, 'in-link', 'x.jsonl'), true],
    ['a sibling whose name starts like the data dir', () => `${data}-other/x.jsonl`, false],
  ])('%s', (_name, p, expected) => {
    expect(isUnder(p(), [data])).toBe(expected);
  });

  it('any of several roots', () => {
    expect(isUnder(path.join(outside, 'm.csv'), ['/srv/none', outside])).toBe(true);
    expect(isUnder(path.join(root, 'm.csv'), ['/srv/none', outside])).toBe(false);
  });

  it('a relative path is taken against the working directory', () => {
    expect(isUnder('x.jsonl', [process.cwd()])).toBe(true);
    expect(isUnder('../x.jsonl', [process.cwd()])).toBe(false);
  });
});
