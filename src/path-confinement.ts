// Workflow input names files on the workers' storage; whoever can start a workflow must not reach outside the
// directories the operator gave the worker. A path is judged by where it really is: the deepest existing
// ancestor is resolved with realpath (defeating symlinks and `..`), the rest must not climb out of it.
import { realpathSync } from 'node:fs';
import path from 'node:path';

/** The real location `p` would have: realpath of its deepest existing ancestor, plus the rest. */
export function realLocation(p: string): string {
  const absolute = path.resolve(p);
  let existing = absolute;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(existing), ...rest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const parent = path.dirname(existing);
      if (parent === existing) return absolute;
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** Whether `p` really lies under one of `roots` (a root itself does not count: it names no file). */
export function isUnder(p: string, roots: readonly string[]): boolean {
  const real = realLocation(p);
  return roots.some((root) => {
    const rel = path.relative(realLocation(root), real);
    return rel !== '' && !rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel);
  });
}
