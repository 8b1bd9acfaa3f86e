import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDataDir, safeName, workflowDataDir } from '../../src/store/data-dir';

describe('safeName', () => {
  it.each([
    ['backfill-2024-11', 'backfill-2024-11'],
    ['a/b', 'a%2Fb'],
    ['..', '%2E%2E'],
    ['.hidden', '%2Ehidden'],
    ['x*y', 'x%2Ay'],
    ['회원 1', '%ED%9A%8C%EC%9B%90%201'],
    ['a\\b:c', 'a%5Cb%3Ac'],
  ])('%j -> %j (one path segment, never a parent or hidden name)', (id, name) => {
    expect(safeName(id)).toBe(name);
    expect(path.basename(safeName(id))).toBe(safeName(id));
  });
});

describe('the data directory layout', () => {
  it('puts every run of a workflow id under one directory, each backfill in its own', () => {
    expect(workflowDataDir('/data', '../etc')).toBe('/data/%2E%2E%2Fetc');
    expect(runDataDir('/data', 'wf/1', 'run-1')).toBe('/data/wf%2F1/run-1');
    expect(path.dirname(runDataDir('/data', 'wf', 'r'))).toBe(workflowDataDir('/data', 'wf'));
  });
});
