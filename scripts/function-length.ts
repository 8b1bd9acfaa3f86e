// Part of `npm run lint`: no product function (src/, activities/, workflows/) over MAX_OWN_LINES lines of its own.
// A function's own lines are the lines of code it spans (blank and comment-only lines left out) that are not inside
// a function nested in it: a nested function is counted as a function of its own. Methods, constructors, accessors,
// arrow functions and function expressions are functions too. Read with the TypeScript compiler API, no type check.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const MAX_OWN_LINES = 80;
const ROOT = path.resolve(__dirname, '..');
const PRODUCT = ['src', 'activities', 'workflows'];

export interface FunctionLength {
  file: string;
  line: number;
  name: string;
  ownLines: number;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** The 0-based lines of a file that hold code: a token starts, ends or runs through them (not blank, not a comment). */
function codeLines(source: ts.SourceFile): Set<number> {
  const lines = new Set<number>();
  const mark = (node: ts.Node): void => {
    if (node.kind >= ts.SyntaxKind.FirstJSDocNode && node.kind <= ts.SyntaxKind.LastJSDocNode) return;
    const children = node.getChildren(source);
    if (children.length > 0) return children.forEach(mark);
    if (node.kind === ts.SyntaxKind.EndOfFileToken) return;
    const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
    const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
    for (let line = start; line <= end; line++) lines.add(line);
  };
  mark(source);
  return lines;
}

function isFunction(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node)
  );
}

function nameOf(node: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  if (node.name) return node.name.getText(source);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
    return parent.name.getText(source);
  return '(anonymous)';
}

/** Every function of one file with its own lines. */
export function functionLengths(file: string, text: string): FunctionLength[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const code = codeLines(source);
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
  const found: FunctionLength[] = [];
  // Returns the code lines `node` spans, nested functions' lines taken out (they count for themselves).
  const visit = (node: ts.Node): Set<number> => {
    const nestedLines = new Set<number>();
    const walk = (child: ts.Node): void => {
      if (isFunction(child)) {
        const spanned = measure(child);
        for (const line of spanned) nestedLines.add(line);
      } else ts.forEachChild(child, walk);
    };
    ts.forEachChild(node, walk);
    return nestedLines;
  };
  const measure = (fn: ts.FunctionLikeDeclaration): Set<number> => {
    const first = lineOf(fn.getStart(source));
    const last = lineOf(fn.getEnd());
    const nested = visit(fn);
    // A line shared with a nested function (`const f = () => {`) stays the outer function's own.
    const inner = new Set([...nested].filter((line) => line !== first && line !== last));
    let own = 0;
    const spanned = new Set<number>();
    for (let line = first; line <= last; line++) {
      if (!code.has(line)) continue;
      spanned.add(line);
      if (!inner.has(line)) own += 1;
    }
    found.push({ file, line: first + 1, name: nameOf(fn, source), ownLines: own });
    // The nested function's inner lines only: its first and last lines are shared with the code around it.
    return new Set([...spanned].filter((line) => line !== first && line !== last));
  };
  visit(source);
  return found;
}

/** The functions over the limit, longest first, one line each: none when every function is short enough. */
export function problems(all: FunctionLength[]): string[] {
  return all
    .filter((f) => f.ownLines > MAX_OWN_LINES)
    .sort((a, b) => b.ownLines - a.ownLines)
    .map((f) => `${f.file}:${f.line}: ${f.name} has ${f.ownLines} lines of its own (at most ${MAX_OWN_LINES})`);
}

function main(): void {
  const files = PRODUCT.flatMap((dir) => tsFiles(path.join(ROOT, dir)));
  const all = files.flatMap((file) => functionLengths(path.relative(ROOT, file), readFileSync(file, 'utf8')));
  const found = problems(all);
  for (const line of found) console.error(line);
  if (found.length > 0) {
    console.error(`function length: split long functions along their seams (at most ${MAX_OWN_LINES} own lines)`);
    process.exitCode = 1;
  }
}

if (require.main === module) main();
