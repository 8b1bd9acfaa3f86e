import { describe, expect, it } from 'vitest';
import { functionLengths, problems } from '../../scripts/function-length';

// The check behind `npm run lint` (scripts/function-length.ts): what counts as a function's own lines.
const lengths = (text: string) =>
  Object.fromEntries(functionLengths('x.ts', text).map((f) => [f.name, f.ownLines] as const));

describe('function length: own lines', () => {
  it.each<[string, string, Record<string, number>]>([
    ['a plain function: every line from its head to its brace', 'function f() {\n  a();\n  b();\n}\n', { f: 4 }],
    [
      'blank and comment-only lines do not count',
      'function f() {\n\n  // why\n  /* more\n     why */\n  a();\n}\n',
      { f: 3 },
    ],
    [
      "a nested function's lines are its own, not the outer one's (the lines that open and close it stay the outer's)",
      'function f() {\n  const g = () => {\n    a();\n    b();\n  };\n  g();\n}\n',
      { f: 5, g: 4 },
    ],
    ['a multi-line template literal is code', 'function f() {\n  return `a\n// not a comment\nb`;\n}\n', { f: 5 }],
    [
      'methods, constructors and accessors',
      'class C {\n  constructor() {\n    a();\n  }\n  get v() {\n    return 1;\n  }\n  m() {\n    b();\n  }\n}\n',
      { constructor: 3, v: 3, m: 3 },
    ],
  ])('%s', (_what, text, expected) => {
    expect(lengths(text)).toEqual(expected);
  });
});

describe('function length: what the check reports', () => {
  const fn = (name: string, ownLines: number) => ({ file: 'a.ts', line: 1, name, ownLines });
  it.each<[string, ReturnType<typeof fn>[], string[]]>([
    ['short functions: nothing', [fn('f', 80), fn('g', 3)], []],
    [
      'each function over the limit, longest first',
      [fn('f', 81), fn('g', 12), fn('h', 200)],
      ['a.ts:1: h has 200 lines of its own (at most 80)', 'a.ts:1: f has 81 lines of its own (at most 80)'],
    ],
  ])('%s', (_what, functions, expected) => {
    expect(problems(functions)).toEqual(expected);
  });
});
