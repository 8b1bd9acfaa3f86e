import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createStoreGate, isStoreUnavailable, storeBackoffMs } from '../../activities/store-outage';

const coded = (code: string) => Object.assign(new Error(`failed: ${code}`), { code });

describe('a store error: the store is away (wait) or the write is wrong (throw)?', () => {
  it.each<[string, unknown, boolean]>([
    ['PostgreSQL refusing connections', coded('ECONNREFUSED'), true],
    ['a connection reset', coded('ECONNRESET'), true],
    ['node-postgres losing the connection mid-query', new Error('Connection terminated unexpectedly'), true],
    [
      'a pooled client after its connection died',
      new Error('Client has encountered a connection error and is not queryable'),
      true,
    ],
    ['the server shutting down (57P01)', coded('57P01'), true],
    ['the server starting up (57P03)', coded('57P03'), true],
    ['a standby after a failover: read-only transaction (25006)', coded('25006'), true],
    ['a connection exception (08006)', coded('08006'), true],
    ['a full disk', coded('ENOSPC'), true],
    ['a read-only remount', coded('EROFS'), true],
    ['a code on the cause', new Error('append failed', { cause: coded('ENOSPC') }), true],
    ['a syntax error (42601)', coded('42601'), false],
    ['a unique violation (23505)', coded('23505'), false],
    ['permission denied on a file', coded('EACCES'), false],
    ['a missing directory', coded('ENOENT'), false],
    ['a plain bug', new TypeError('x is undefined'), false],
    ['not an error', 'oops', false],
  ])('%s: %s', (_, err, expected) => {
    expect(isStoreUnavailable(err)).toBe(expected);
  });

  it.each([
    [1, 250],
    [2, 500],
    [3, 1_000],
    [5, 4_000],
    [6, 5_000],
    [40, 5_000],
  ])('backoff after %i failed tries: %i ms', (failures, ms) => {
    expect(storeBackoffMs(failures)).toBe(ms);
  });
});

describe('the store gate', () => {
  const fast = { backoffMs: () => 5 };

  it('retries a write while the store is away, holds the gate closed meanwhile, and opens it once written', async () => {
    const events: string[] = [];
    const gate = createStoreGate({
      signal: new AbortController().signal,
      ...fast,
      onUnavailable: () => events.push('away'),
      onBack: () => events.push('back'),
    });
    let tries = 0;
    let release!: () => void;
    const storeBack = new Promise<void>((r) => (release = r));
    const written = gate.persist(async () => {
      tries += 1;
      if (tries < 4) throw coded('ECONNREFUSED');
      await storeBack;
      return 'ok';
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(gate.unavailableSince()).toBeTypeOf('number');
    let opened = false;
    const open = gate.open().then(() => (opened = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(opened).toBe(false); // nothing is sent while a write waits
    release();
    expect(await written).toBe('ok');
    await open;
    expect(opened).toBe(true);
    expect(tries).toBe(4);
    expect(gate.unavailableSince()).toBeUndefined();
    expect(events).toEqual(['away', 'back']);
  });

  it('rethrows an error that is not the store being away, at once', async () => {
    const gate = createStoreGate({ signal: new AbortController().signal, ...fast });
    let tries = 0;
    const bug = coded('42601');
    await expect(
      gate.persist(async () => {
        tries += 1;
        throw bug;
      }),
    ).rejects.toBe(bug);
    expect(tries).toBe(1);
    await gate.open(); // never closed
  });

  it('stops waiting when the activity is cancelled', async () => {
    const cancel = new AbortController();
    const gate = createStoreGate({ signal: cancel.signal, ...fast });
    const written = gate.persist(async () => {
      throw coded('ECONNREFUSED');
    });
    await new Promise((r) => setTimeout(r, 20));
    const open = gate.open();
    cancel.abort(new Error('cancelled'));
    await expect(written).rejects.toThrow();
    await expect(open).rejects.toThrow('cancelled');
  });

  it('puts one abort listener on the activity signal however many writes and members wait', async () => {
    const cancel = new AbortController();
    const gate = createStoreGate({ signal: cancel.signal, ...fast });
    const writes = Array.from({ length: 8 }, () =>
      gate.persist(async () => {
        throw coded('ECONNREFUSED');
      }),
    );
    await new Promise((r) => setTimeout(r, 30));
    const members = Array.from({ length: 16 }, () => gate.open());
    expect(getEventListeners(cancel.signal, 'abort')).toHaveLength(1);
    cancel.abort(new Error('cancelled'));
    for (const waiting of [...writes, ...members]) await expect(waiting).rejects.toThrow('cancelled');
  });

  it('tells whileWaiting all through a long wait between tries, not once per try', async () => {
    let told = 0;
    const gate = createStoreGate({
      signal: new AbortController().signal,
      backoffMs: () => 400,
      waitingEveryMs: 50,
      whileWaiting: () => told++,
    });
    let tries = 0;
    await gate.persist(async () => {
      if (++tries < 2) throw coded('ENOSPC');
      return 'ok';
    });
    expect(tries).toBe(2);
    expect(told).toBeGreaterThanOrEqual(6); // one wait of 400 ms told every 50 ms: 8 times
  });
});
