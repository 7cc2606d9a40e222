import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BYTES, ENTRY_OVERHEAD_BYTES, ResultCache, makeCacheKey, type CacheKey } from '../../src/cache/result-cache.js';

const key = (fn: string, arg: string, version = '1'): CacheKey => makeCacheKey(fn, version, 'full', Buffer.from(arg));
const bytes = (n: number, fill = 1): Buffer => Buffer.alloc(n, fill);
const value = (v: Buffer) => async () => v;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('makeCacheKey', () => {
  it('depends on function, version, result profile and argument bytes, unambiguously', () => {
    const a = makeCacheKey('f', '1', 'full', Buffer.from([1, 2, 3]));
    expect(makeCacheKey('f', '1', 'full', new Uint8Array([1, 2, 3]))).toEqual(a);
    expect(makeCacheKey('f', '2', 'full', Buffer.from([1, 2, 3])).id).not.toBe(a.id);
    expect(makeCacheKey('g', '1', 'full', Buffer.from([1, 2, 3])).id).not.toBe(a.id);
    expect(makeCacheKey('f', '1', 'full', Buffer.from([1, 2, 4])).id).not.toBe(a.id);
    expect(makeCacheKey('f', '1', 'portable', Buffer.from([1, 2, 3])).id).not.toBe(a.id);
    expect(makeCacheKey('a|1', '', 'full', Buffer.alloc(0)).id).not.toBe(makeCacheKey('a', '1|', 'full', Buffer.alloc(0)).id);
    expect(a.functionName).toBe('f');
  });
});

describe('ResultCache', () => {
  it('serves a hit until the TTL passes, then computes again', async () => {
    let now = 1_000;
    const cache = new ResultCache({ clock: () => now });
    let computed = 0;
    const compute = async () => Buffer.from([++computed]);
    const k = key('f', 'x');
    expect(await cache.getOrCompute(k, 500, compute)).toEqual({ value: Buffer.from([1]), source: 'computed' });
    now = 1_499;
    expect(await cache.getOrCompute(k, 500, compute)).toEqual({ value: Buffer.from([1]), source: 'hit' });
    now = 1_500;
    expect(await cache.getOrCompute(k, 500, compute)).toEqual({ value: Buffer.from([2]), source: 'computed' });
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, expirations: 1, entries: 1 });
  });

  it('prunes expired entries on demand', async () => {
    let now = 0;
    const cache = new ResultCache({ clock: () => now });
    await cache.getOrCompute(key('f', 'short'), 10, value(bytes(10)));
    await cache.getOrCompute(key('f', 'long'), 1_000, value(bytes(10)));
    now = 10;
    expect(cache.prune()).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 1, expirations: 1, bytes: 10 + ENTRY_OVERHEAD_BYTES });
  });

  it('evicts the least recently used entries to stay within maxBytes', async () => {
    const entry = 100 + ENTRY_OVERHEAD_BYTES;
    const cache = new ResultCache({ maxBytes: 3 * entry, maxEntryShare: 1 });
    for (const name of ['a', 'b', 'c']) await cache.getOrCompute(key('f', name), 60_000, value(bytes(100)));
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 3 * entry, evictions: 0 });
    expect(cache.get(key('f', 'a'))).toBeDefined(); // a is now the most recently used
    await cache.getOrCompute(key('f', 'd'), 60_000, value(bytes(100))); // evicts b
    expect(cache.get(key('f', 'b'))).toBeUndefined();
    await cache.getOrCompute(key('f', 'e'), 60_000, value(bytes(100))); // evicts c
    expect(cache.get(key('f', 'c'))).toBeUndefined();
    for (const name of ['a', 'd', 'e']) expect(cache.get(key('f', name))).toBeDefined();
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 3 * entry, evictions: 2 });
    // One large entry pushes out as many old ones as it needs.
    await cache.getOrCompute(key('f', 'big'), 60_000, value(bytes(2 * entry + 100)));
    expect(cache.stats()).toMatchObject({ entries: 1, evictions: 5 });
    expect(cache.stats().bytes).toBeLessThanOrEqual(3 * entry);
  });

  it('returns but does not keep an entry above its share of maxBytes', async () => {
    const cache = new ResultCache({ maxBytes: 10_000, maxEntryShare: 0.5 });
    const big = bytes(5_000);
    expect((await cache.getOrCompute(key('f', 'big'), 1_000, value(big))).value).toBe(big);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, uncacheable: 1 });
    await cache.getOrCompute(key('f', 'small'), 1_000, value(bytes(4_000)));
    expect(cache.stats().entries).toBe(1);
  });

  it('runs 50 concurrent identical calls through one compute', async () => {
    const cache = new ResultCache();
    const gate = deferred<Buffer>();
    let computed = 0;
    const compute = () => {
      computed++;
      return gate.promise;
    };
    const k = key('f', 'same');
    const calls = Array.from({ length: 50 }, () => cache.getOrCompute(k, 1_000, compute));
    await Promise.resolve();
    expect(cache.stats().inflight).toBe(1);
    const result = Buffer.from('result');
    gate.resolve(result);
    const outcomes = await Promise.all(calls);
    expect(computed).toBe(1);
    for (const o of outcomes) expect(o.value).toBe(result);
    expect(outcomes.filter((o) => o.source === 'computed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.source === 'joined')).toHaveLength(49);
    expect(cache.stats()).toMatchObject({ misses: 1, coalesced: 49, inflight: 0, entries: 1 });
    expect((await cache.getOrCompute(k, 1_000, compute)).source).toBe('hit');
    expect(computed).toBe(1);
  });

  it('never caches an error: every waiter gets it and the next call computes again', async () => {
    const cache = new ResultCache();
    const gate = deferred<Buffer>();
    let computed = 0;
    const k = key('f', 'flaky');
    const failing = Array.from({ length: 10 }, () =>
      cache.getOrCompute(k, 1_000, () => {
        computed++;
        return gate.promise;
      }),
    );
    const boom = new Error('node lost');
    gate.reject(boom);
    const settled = await Promise.allSettled(failing);
    expect(settled.every((s) => s.status === 'rejected' && s.reason === boom)).toBe(true);
    expect(computed).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 0, inflight: 0 });
    const ok = await cache.getOrCompute(k, 1_000, async () => {
      computed++;
      return Buffer.from('ok');
    });
    expect(ok.source).toBe('computed');
    expect(computed).toBe(2);
  });

  it('turns a compute that throws synchronously into a rejection', async () => {
    const cache = new ResultCache();
    await expect(
      cache.getOrCompute(key('f', 'x'), 1_000, () => {
        throw new TypeError('bad');
      }),
    ).rejects.toThrow('bad');
    expect(cache.stats().inflight).toBe(0);
  });

  it('rejects a non-positive TTL', async () => {
    const cache = new ResultCache();
    await expect(cache.getOrCompute(key('f', 'x'), 0, value(bytes(1)))).rejects.toThrow(RangeError);
  });

  it('invalidates every entry of one function and nothing else', async () => {
    const cache = new ResultCache();
    for (const arg of ['1', '2', '3']) await cache.getOrCompute(key('f', arg), 60_000, value(bytes(10)));
    await cache.getOrCompute(key('f', '1', 'v2'), 60_000, value(bytes(10)));
    await cache.getOrCompute(key('g', '1'), 60_000, value(bytes(10)));
    expect(cache.invalidate('f')).toBe(4);
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 10 + ENTRY_OVERHEAD_BYTES });
    expect(cache.get(key('g', '1'))).toBeDefined();
    expect(cache.get(key('f', '1'))).toBeUndefined();
    expect(cache.invalidate('f')).toBe(0);
  });

  it('does not keep a result computed before an invalidate, and starts a fresh flight after it', async () => {
    const cache = new ResultCache();
    const stale = deferred<Buffer>();
    const k = key('f', 'x');
    const first = cache.getOrCompute(k, 60_000, () => stale.promise);
    cache.invalidate('f');
    expect(cache.stats().inflight).toBe(0);
    const fresh = deferred<Buffer>();
    const second = cache.getOrCompute(k, 60_000, () => fresh.promise);
    stale.resolve(Buffer.from('stale'));
    expect((await first).value.toString()).toBe('stale');
    expect(cache.stats()).toMatchObject({ entries: 0, inflight: 1 });
    fresh.resolve(Buffer.from('fresh'));
    expect((await second).value.toString()).toBe('fresh');
    expect(cache.get(k)?.toString()).toBe('fresh');
  });

  it('keeps its own copy of a value that views a larger allocation', async () => {
    const cache = new ResultCache();
    const parent = Buffer.alloc(1_000_000, 7);
    const view = parent.subarray(10, 20);
    await cache.getOrCompute(key('f', 'x'), 60_000, value(view));
    const kept = cache.get(key('f', 'x'))!;
    expect(kept.equals(view)).toBe(true);
    expect(kept.buffer.byteLength).toBe(10);
  });

  it('defaults to a 64 MiB bound', () => {
    expect(DEFAULT_MAX_BYTES).toBe(64 * 1024 * 1024);
  });
});
