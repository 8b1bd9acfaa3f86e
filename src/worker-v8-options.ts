import { setFlagsFromString } from 'node:v8';

/**
 * The V8 options of the shipped worker command (package.json's `start`, which the image's CMD equals) that
 * `NODE_OPTIONS` does not take. `webhook-backfill worker` runs the worker in the CLI's own process, so it sets them
 * itself before the worker starts:
 * - `--no-allocation-site-pretenuring`: V8 took the rows of a large source for long-lived objects and pretenured
 *   them, doubling the preparation's GC (BENCHMARKS.md);
 * - `--liftoff-only`: undici's HTTP parser (WebAssembly) is left to V8's baseline compiler; its TurboFan
 *   recompilation left ~35 MB in the malloc heap of about half the workers (the bimodal start, BENCHMARKS.md).
 *   It must be set before the parser is compiled, which undici does at its first connection.
 *
 * test/unit/shipped-node-options.test.ts holds this list equal to the shipped command's options `NODE_OPTIONS`
 * refuses.
 */
export const V8_ONLY_WORKER_OPTIONS = ['--no-allocation-site-pretenuring', '--liftoff-only'] as const;

/** Sets V8_ONLY_WORKER_OPTIONS in this process (before the worker's first connection). */
export function applyV8OnlyWorkerOptions(): void {
  for (const option of V8_ONLY_WORKER_OPTIONS) setFlagsFromString(option);
}
