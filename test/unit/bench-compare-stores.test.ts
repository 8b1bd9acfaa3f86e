// `npm run bench -- --store postgres` (bench/compare-stores.ts): the options each store's run gets, the figures
// read from its report, and the side-by-side table with the 2x target.
import { describe, expect, it } from 'vitest';
import { renderStoreComparison, storeFigures, storeRunArgs } from '../../bench/compare-stores';

describe('storeRunArgs', () => {
  it.each([
    [
      ['--store', 'postgres', '--n', '1m'],
      ['--n', '1m'],
    ],
    [
      ['--store=postgres', '--repeat', '1', '--skip-script'],
      ['--repeat', '1', '--skip-script'],
    ],
    [['--json', 'x.json', '--store', 'postgres'], []],
    [['--json=x.json', '--store-alone', '--store', 'postgres', '--keep'], ['--keep']],
  ])('%j keeps %j and sets its own store, --store-alone and --json', (argv, kept) => {
    expect(storeRunArgs(argv, 'file', '/r/f.json')).toEqual([
      ...kept,
      '--store',
      'file',
      '--store-alone',
      '--json',
      '/r/f.json',
    ]);
  });
});

describe('storeFigures and renderStoreComparison', () => {
  const report = (walls: number[], db?: number) => ({
    summary: { projectMembersPerSecond: 4000, workerPeakRssBytes: 200 * 1024 * 1024 },
    projects: walls.map((wallMs) => ({
      wallMs,
      finished: true,
      ...(db ? { database: { bytesPerMember: db, peakGrowthBytes: db * 20_000 } } : {}),
    })),
  });

  it('takes the median wall time of the finished runs and the database bytes per member', () => {
    expect(storeFigures('postgres', 0, report([9000, 5000, 7000], 820))).toEqual({
      store: 'postgres',
      exitCode: 0,
      wallMs: 7000,
      membersPerSecond: 4000,
      workerPeakRssBytes: 200 * 1024 * 1024,
      databaseBytesPerMember: 820,
    });
    expect(storeFigures('file', 1, undefined)).toMatchObject({ wallMs: undefined, databaseBytesPerMember: undefined });
  });

  it.each([
    [5000, 9000, 'met (1.80x)'],
    [5000, 12000, 'NOT met (2.40x)'],
  ])('file %d ms, postgres %d ms: %s', (fileMs, pgMs, verdict) => {
    const text = renderStoreComparison([
      storeFigures('file', 0, report([fileMs])),
      storeFigures('postgres', 0, report([pgMs], 800)),
    ]);
    expect(text).toContain(`target (postgres <= 2x the file store time): ${verdict}`);
    expect(text).toMatch(/postgres +\S+ s/);
    expect(text).toContain('800 B');
  });

  it('a store whose run failed says so, and the target is not measured', () => {
    const text = renderStoreComparison([
      storeFigures('file', 0, report([5000])),
      storeFigures('postgres', 1, undefined),
    ]);
    expect(text).toContain('postgres (FAILED, exit 1)');
    expect(text).toContain('not measured');
  });
});
