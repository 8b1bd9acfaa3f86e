import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { invalidAt, issueAt } from '../../src/channel/zod-issue';

// How a reason names a Channel Talk answer that failed its schema (user lookup, channel, webhooks page): the first
// issue's path and code, never zod's message, which can quote the value (a contact, a webhook token).

const answer = z.object({
  user: z.object({ email: z.string().nullish(), type: z.string().nullish() }),
  webhooks: z.array(z.object({ token: z.string(), scopes: z.array(z.string()) })).optional(),
});

const CASES: Array<[name: string, json: unknown, where: string, code: string]> = [
  ['the body null', null, 'body', 'invalid_type'],
  ['the body an array', [], 'body', 'invalid_type'],
  ['no user', {}, 'user', 'invalid_type'],
  ['a field of the wrong type', { user: { email: 98765 } }, 'user.email', 'invalid_type'],
  [
    'an item of an array, by its index',
    { user: {}, webhooks: [{ token: 't', scopes: 'x' }] },
    'webhooks.0.scopes',
    'invalid_type',
  ],
  ['the first of two issues', { user: { email: 1, type: 2 } }, 'user.email', 'invalid_type'],
];

describe('a zod issue as a reason names: path and code', () => {
  it.each(CASES)('%s', (_name, json, where, code) => {
    const parsed = answer.safeParse(json);
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    expect(issueAt(parsed.error)).toEqual({ where, code });
    expect(invalidAt(issueAt(parsed.error))).toBe(`invalid ${where} (${code})`);
  });

  it('a message that quotes the value is not in the reason', () => {
    const token = z.string().refine(() => false, { error: (issue) => `bad token ${String(issue.input)}` });
    const parsed = z.object({ token }).safeParse({ token: 'secret-token-value' });
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    expect(parsed.error.issues[0]?.message).toContain('secret-token-value');
    expect(invalidAt(issueAt(parsed.error))).toBe('invalid token (custom)');
  });

  it('an error without issues names the body, code unknown', () => {
    expect(issueAt(new z.ZodError([]))).toEqual({ where: 'body', code: 'unknown' });
  });
});
