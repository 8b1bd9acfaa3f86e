import { describe, expect, it } from 'vitest';
import { errorLabel } from '../../src/http/error-label';

const withCode = (code: unknown, cause?: unknown) =>
  Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443 ?token=secret'), { code, cause });

describe('errorLabel: a safe label from an error code or class name, never the message', () => {
  it.each([
    ['a Node socket code', withCode('ECONNRESET'), 'ECONNRESET'],
    ['an undici code', withCode('UND_ERR_SOCKET'), 'UND_ERR_SOCKET'],
    [
      'the code of the cause when the error has none',
      new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }),
      'ECONNREFUSED',
    ],
    ['two causes deep', new Error('outer', { cause: new Error('middle', { cause: withCode('EPIPE') }) }), 'EPIPE'],
    [
      'a code that is not identifier-like is skipped for the class name',
      withCode('see https://host/?token=x'),
      'Error',
    ],
    ['no code anywhere: the class name', new TypeError('https://host/?token=x'), 'TypeError'],
    ['a class name that is not identifier-like', Object.assign(new Error('x'), { name: 'Bad name!' }), undefined],
    ['not an error', 'ECONNRESET', undefined],
    ['null', null, undefined],
  ])('%s', (_label, err, expected) => {
    expect(errorLabel(err)).toBe(expected);
  });

  it('stops on a cause cycle', () => {
    const a: { code?: string; cause?: unknown } = {};
    const b = { cause: a };
    a.cause = b;
    expect(errorLabel(a)).toBeUndefined();
  });
});
