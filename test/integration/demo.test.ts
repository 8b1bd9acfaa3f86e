// The README's first command, `npm run demo`, run as a user runs it (non-interactive: `--exit`): it must end with
// exit code 0, the counts of examples/expected.json, and every replayed member proven repaired by its verify step.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isListening } from '../../dev/temporal-cli';
import { runProcess } from '../support/child-process';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const expected = (
  JSON.parse(readFileSync(path.join(ROOT, 'examples', 'expected.json'), 'utf8')) as {
    counts: Record<'rows' | 'upserts' | 'deletes' | 'unchanged' | 'failed' | 'skipped', number>;
  }
).counts;

const cwd = mkdtempSync(path.join(tmpdir(), 'demo-test-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** A row of the summary `console.table` prints: `│ upserts   │ 94     │`. */
function tableValue(stdout: string, name: string): number | undefined {
  const m = new RegExp(`│ ${name}\\s+│ (\\d+)\\s+│`).exec(stdout);
  return m ? Number(m[1]) : undefined;
}

describe('npm run demo -- --exit', () => {
  it('repairs the examples, matches expected.json and proves every replay repaired', { timeout: 240_000 }, async () => {
    const serverBefore = await isListening(7233); // a server already there is reused by the demo and stays
    // Its own directory (backfill-data/ is made in the working directory), as from a fresh clone.
    const r = await runProcess(TSX, [path.join(ROOT, 'dev', 'demo.ts'), '--exit'], {}, 200_000, cwd);
    const output = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.code, output).toBe(0);
    expect(r.stdout).toContain('counts match examples/expected.json');
    expect(tableValue(r.stdout, 'processed')).toBe(expected.rows);
    for (const k of ['upserts', 'deletes', 'unchanged', 'failed', 'skipped'] as const)
      expect(tableValue(r.stdout, k), k).toBe(expected[k]);
    const replayed = expected.upserts + expected.deletes;
    expect(r.stdout).toContain(`deliveries accepted by the receiver: ${replayed}`);
    expect(r.stdout).toContain(`every replayed member is repaired (${replayed} of ${replayed})`);
    expect(r.stdout).toMatch(/Web UI: http:\/\/\S+\/namespaces\/default\/workflows\/backfill-demo-/);
    // The audit log it names is where it says, under the working directory.
    const audit = /^audit log: (\S+)$/m.exec(r.stdout)?.[1];
    expect(audit && audit.startsWith(cwd) && existsSync(audit), `audit log ${audit}`).toBe(true);
    // So is the HTML report of the repair and its proof.
    const html = /^HTML report: (\S+)$/m.exec(r.stdout)?.[1];
    expect(html && html.startsWith(cwd) && existsSync(html), `HTML report ${html}`).toBe(true);
    // The simulator's credentials and the webhook token never reach its output.
    for (const secret of ['demo-access-secret', 'demo-webhook-token']) expect(output).not.toContain(secret);
    // With --exit nothing stays up: the dev server it started is gone.
    if (!serverBefore) expect(await isListening(7233)).toBe(false);
  });
});
