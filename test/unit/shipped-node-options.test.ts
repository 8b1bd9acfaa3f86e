// What the shipped worker command's node options buy, measured in a child node started with them (package.json's
// `start`, which the Dockerfile's CMD equals). --liftoff-only: undici's HTTP parser is WebAssembly (llhttp); once
// hot, V8 recompiled it with TurboFan, whose ~35 MB of compile memory glibc kept in the worker's malloc heap in
// about half the starts (BENCHMARKS.md: the worker's RSS at ready 180-188 MB instead of 153-160 MB, and every
// peak after it). V8 counts that compile memory in its peak "malloced" memory, so that is what is read here.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shippedWorkerCommand } from '../../dev/shipped-worker-command';
import { V8_ONLY_WORKER_OPTIONS } from '../../src/worker-v8-options';

/** The compile memory one TurboFan recompilation of llhttp takes is ~35 MB; the parser's own use is under 5 MB. */
const TIER_UP_MB = 20;

/**
 * Sends requests through undici to a loopback server, in up to ROUNDS rounds of 250 with a pause after each (the
 * recompilation runs on a background thread), stopping once the peak passes TIER_UP_MB; prints the peak.
 */
const CHILD = `
const http = require('node:http');
const v8 = require('node:v8');
const { request } = require(${JSON.stringify(require.resolve('undici'))});
const peakMb = () => v8.getHeapStatistics().peak_malloced_memory / 2 ** 20;
const server = http.createServer((req, res) => res.end('{"user":{"memberId":"m-1","email":null}}'));
server.listen(0, '127.0.0.1', async () => {
  const url = 'http://127.0.0.1:' + server.address().port + '/open/v5/users/@m-1';
  for (let round = 0; round < Number(process.env.ROUNDS) && peakMb() <= ${TIER_UP_MB}; round++) {
    for (let i = 0; i < 250; i++) await (await request(url)).body.text();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  server.close();
  process.stdout.write(String(peakMb()));
});
`;

/** `rounds`: the recompilation is seen within the first round (250 requests); more only bound a loaded machine. */
function peakMallocedMb(nodeArgs: string[], rounds: number, prelude = ''): number {
  const { env } = shippedWorkerCommand();
  const out = execFileSync(process.execPath, [...nodeArgs, '-e', prelude + CHILD], {
    env: { PATH: process.env.PATH ?? '', ...env, ROUNDS: String(rounds) },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return Number(out);
}

describe("the shipped worker command's node options", () => {
  const { nodeArgs } = shippedWorkerCommand();

  it("keep undici's HTTP parser out of TurboFan, and with it the ~35 MB its recompilation took", () => {
    expect(nodeArgs).toContain('--liftoff-only');
    expect(peakMallocedMb(nodeArgs, 8)).toBeLessThan(TIER_UP_MB);
  });

  it('without --liftoff-only, the same requests have V8 recompile the parser (the measure sees it)', () => {
    expect(
      peakMallocedMb(
        nodeArgs.filter((arg) => arg !== '--liftoff-only'),
        40,
      ),
    ).toBeGreaterThan(TIER_UP_MB);
  });
});

/** Whether node starts with `option` in NODE_OPTIONS (it refuses V8 options it does not list, naming them). */
function takenByNodeOptions(option: string): boolean {
  const child = spawnSync(process.execPath, ['-e', '0'], {
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: option },
    encoding: 'utf8',
  });
  if (child.status !== 0) expect(child.stderr).toContain('is not allowed in NODE_OPTIONS');
  return child.status === 0;
}

describe('`webhook-backfill worker`: the V8 options NODE_OPTIONS refuses, set in its own process', () => {
  const { nodeArgs } = shippedWorkerCommand();

  it("are exactly the shipped command's options that NODE_OPTIONS refuses", () => {
    const refused = nodeArgs.filter((arg) => !takenByNodeOptions(arg));
    expect([...refused].sort()).toEqual([...V8_ONLY_WORKER_OPTIONS].sort());
  });

  it("set at run time before the first connection, keep undici's parser out of TurboFan as on the command line", () => {
    const options = path.join(__dirname, '../../src/worker-v8-options.ts');
    const apply = `require(${JSON.stringify(options)}).applyV8OnlyWorkerOptions();\n`;
    const taken = nodeArgs.filter((arg) => !(V8_ONLY_WORKER_OPTIONS as readonly string[]).includes(arg));
    expect(peakMallocedMb(['--import', 'tsx', ...taken], 8, apply)).toBeLessThan(TIER_UP_MB);
  });
});
