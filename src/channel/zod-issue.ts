// What a reason says of a Channel Talk answer that failed its schema (a user lookup, the channel, a webhooks page):
// where and how, from the first zod issue, never its message: a zod message can quote the offending value, and the
// values are contacts and webhook tokens.
import type { z } from 'zod';

/** The first issue's path (`user.email`, `webhooks.0.scopes`; `body` for the answer itself) and zod's issue code. */
export interface IssueAt {
  where: string;
  code: string;
}

/** Where and how a parsed answer failed: its first issue's path and code. */
export function issueAt(error: z.ZodError): IssueAt {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : 'body';
  return { where, code: issue?.code ?? 'unknown' };
}

/** `invalid user.email (invalid_type)`: the part of a reason that names where and how an answer failed. */
export function invalidAt({ where, code }: IssueAt): string {
  return `invalid ${where} (${code})`;
}
