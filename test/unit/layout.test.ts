import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The product (what `npm run build` compiles into dist/ and the image) stays apart from the tooling beside it:
// dev/ (simulator, synthetic data, demo, dev-server helpers), test/, bench/, scripts/.
const ROOT = path.resolve(__dirname, '../..');
const PRODUCT = ['src', 'activities', 'workflows'];
const TOOLING = ['dev', 'test', 'bench', 'scripts'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative import specifiers of a file, resolved to repo-relative paths. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import|require\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1] as string);
  return specs.map((s) => path.relative(ROOT, path.resolve(path.dirname(file), s)));
}

describe('project layout', () => {
  const product = PRODUCT.flatMap((d) => tsFiles(path.join(ROOT, d)));

  it('finds the product files it checks', () => {
    expect(product.length).toBeGreaterThan(50);
  });

  it('the product imports nothing from dev/, test/, bench/ or scripts/', () => {
    const offending = product.flatMap((f) =>
      relativeImports(f)
        .filter((target) => TOOLING.some((t) => target === t || target.startsWith(`${t}/`)))
        .map((target) => `${path.relative(ROOT, f)} -> ${target}`),
    );
    expect(offending).toEqual([]);
  });

  it('the build compiles the product only', () => {
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect([...build.include].sort()).toEqual([...PRODUCT].sort());
  });

  it('src/ holds no simulator, synthetic data, demo or dev-server helper', () => {
    const names = tsFiles(path.join(ROOT, 'src')).map((f) => path.relative(ROOT, f));
    expect(names.filter((n) => /simulator|synthetic|seeded-rng|demo|temporal-cli/.test(n))).toEqual([]);
  });
});
