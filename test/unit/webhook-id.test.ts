import { describe, expect, it } from 'vitest';
import { WEBHOOK_ID_PATTERN, webhookId } from '../../src/webhook/webhook-id';
import type { WebhookEvent } from '../../src/domain/types';

type Args = [string, string, WebhookEvent];

describe('webhookId', () => {
  it('is stable for the same inputs', () => {
    const a = webhookId('run-2024-11', 'member-1', 'upsert');
    expect(webhookId('run-2024-11', 'member-1', 'upsert')).toBe(a);
  });

  it('has the Standard-Webhooks style format', () => {
    for (const args of [
      ['r', 'm', 'upsert'],
      ['', '', 'delete'],
      ['런', '회원-😀', 'upsert'],
    ] as Args[]) {
      expect(webhookId(...args)).toMatch(WEBHOOK_ID_PATTERN);
      expect(webhookId(...args)).toMatch(/^msg_[0-9a-f]{32}$/);
    }
  });

  // Each row: two input triples that must never share an id.
  const distinct: Array<{ name: string; a: Args; b: Args }> = [
    { name: 'different runLabel', a: ['run-a', 'm1', 'upsert'], b: ['run-b', 'm1', 'upsert'] },
    { name: 'different memberId', a: ['run', 'm1', 'upsert'], b: ['run', 'm2', 'upsert'] },
    { name: 'different event', a: ['run', 'm1', 'upsert'], b: ['run', 'm1', 'delete'] },
    { name: 'concatenation shift', a: ['a', 'bc', 'upsert'], b: ['ab', 'c', 'upsert'] },
    { name: 'separator inside a field', a: ['a|b', 'c', 'upsert'], b: ['a', 'b|c', 'upsert'] },
    { name: 'quote inside a field', a: ['a","b', 'c', 'upsert'], b: ['a', 'b","c', 'upsert'] },
    { name: 'empty vs moved', a: ['', 'ab', 'delete'], b: ['ab', '', 'delete'] },
  ];
  it.each(distinct)('differs on $name', ({ a, b }) => {
    expect(webhookId(...a)).not.toBe(webhookId(...b));
  });
});
