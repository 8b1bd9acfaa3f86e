import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// bin/webhook-backfill.js runs dist/ only when nothing the build reads changed after it: a checkout whose dist/ predates an
// edit ran the old code. A tree of its own with a stand-in CLI on each side says which one ran.
const tree = mkdtempSync(join(tmpdir(), 'backfill-bin-'));
afterAll(() => rmSync(tree, { recursive: true, force: true }));

for (const file of ['bin/webhook-backfill.js', 'scripts/source-freshness.js']) {
  mkdirSync(join(tree, file, '..'), { recursive: true });
  copyFileSync(resolve(file), join(tree, file));
}
symlinkSync(resolve('node_modules'), join(tree, 'node_modules'));
mkdirSync(join(tree, 'dist/src/cli'), { recursive: true });
const builtMain = join(tree, 'dist/src/cli/main.js');
writeFileSync(builtMain, "exports.run = () => console.log('dist');\n");
mkdirSync(join(tree, 'src/cli'), { recursive: true });
const sourceMain = join(tree, 'src/cli/main.ts');
writeFileSync(sourceMain, "export const run = (): void => console.log('sources');\n");
const editedSource = join(tree, 'activities/edited.ts');
mkdirSync(join(tree, 'activities'));
writeFileSync(editedSource, 'export {};\n');

const ran = () => execFileSync(process.execPath, [join(tree, 'bin/webhook-backfill.js')], { encoding: 'utf8' }).trim();
const setMtime = (file: string, secondsAgo: number) => {
  const at = new Date(Date.now() - secondsAgo * 1000);
  utimesSync(file, at, at);
};
// A folder's own time counts too (a deleted file shows only there): the folders predate every case.
for (const folder of ['src', 'src/cli', 'activities']) setMtime(join(tree, folder), 600);

describe('bin/webhook-backfill.js', () => {
  it.each([
    { case: 'dist/ built after every source', dist: 10, source: 60, edited: 60, runs: 'dist' },
    { case: 'a source edited after the build', dist: 60, source: 120, edited: 10, runs: 'sources' },
    { case: 'the CLI entry edited after the build', dist: 60, source: 10, edited: 120, runs: 'sources' },
  ])('$case: runs the $runs', ({ dist, source, edited, runs }) => {
    setMtime(builtMain, dist);
    setMtime(sourceMain, source);
    setMtime(editedSource, edited);
    expect(ran()).toBe(runs);
  });

  it('runs the sources when there is no build', () => {
    rmSync(join(tree, 'dist'), { recursive: true });
    expect(ran()).toBe('sources');
  });
});
