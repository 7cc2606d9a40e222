import { describe, expect, it } from 'vitest';
import { HISTOGRAM_GROWTH, LiveMetrics, MAX_WINDOWS, OVERFLOW_NAME, type LiveCall } from '../../src/metrics/live.js';

const START = 1_000_000;

function call(o: Partial<LiveCall> = {}): LiveCall {
  return { functionName: 'f', nodeId: 'a', success: true, totalMs: 10, ...o };
}

function setup(options: { windowMs?: number; bucketMs?: number } = {}) {
  let now = START;
  const live = new LiveMetrics({ ...options, clock: () => now });
  return {
    live,
    at: (t: number) => {
      now = START + t;
    },
  };
}

describe('LiveMetrics window', () => {
  it('gives the rate per second over the window and forgets calls older than the window', () => {
    const { live, at } = setup();
    // 120 calls spread over the first minute: 2 per second.
    for (let i = 0; i < 120; i++) {
      at(i * 500);
      live.record(call());
    }
    at(59_999);
    expect(live.overall()).toMatchObject({ calls: 120, ratePerSecond: 2 });
    // 30 s later the first 30 seconds' buckets have left the window.
    at(59_999 + 30_000);
    expect(live.overall().calls).toBe(60);
    expect(live.overall().ratePerSecond).toBe(1);
    // A bucket lives while its second is one of the last 60: the calls of second 59
    // count up to 118_999 and are gone at 119_000.
    at(118_999);
    expect(live.overall().calls).toBe(2);
    at(119_000);
    expect(live.overall()).toMatchObject({ calls: 0, ratePerSecond: 0, successRate: 0, p99Ms: 0 });
  });

  it('reuses a bucket slot on the next lap of the ring without carrying old counts', () => {
    const { live, at } = setup({ windowMs: 5_000, bucketMs: 1_000 });
    at(0);
    live.record(call());
    live.record(call());
    at(5_000); // same slot, next lap
    live.record(call());
    expect(live.overall().calls).toBe(1);
  });

  it('ignores a call timed before the window after the clock stepped back', () => {
    const { live, at } = setup({ windowMs: 5_000, bucketMs: 1_000 });
    at(10_000);
    live.record(call());
    at(5_000); // same slot as 10_000, an older lap
    live.record(call());
    at(10_000);
    expect(live.overall().calls).toBe(1);
  });

  it('counts errors into the success rate', () => {
    const { live } = setup();
    for (let i = 0; i < 10; i++) live.record(call({ success: i >= 3 }));
    expect(live.overall()).toMatchObject({ calls: 10, errors: 3, successRate: 0.7 });
  });

  it('keeps percentiles within the documented error, and min/max/mean exact', () => {
    const { live } = setup();
    for (let v = 1; v <= 1_000; v++) live.record(call({ totalMs: v }));
    const o = live.overall();
    const tolerance = Math.sqrt(HISTOGRAM_GROWTH) - 1;
    expect(Math.abs(o.p50Ms - 500) / 500).toBeLessThanOrEqual(tolerance);
    expect(Math.abs(o.p95Ms - 950) / 950).toBeLessThanOrEqual(tolerance);
    expect(Math.abs(o.p99Ms - 990) / 990).toBeLessThanOrEqual(tolerance);
    expect(o.minMs).toBe(1);
    expect(o.maxMs).toBe(1_000);
    expect(o.avgMs).toBe(500.5);
  });

  it('reports identical latencies exactly (clamped to the window min and max)', () => {
    const { live } = setup();
    for (let i = 0; i < 50; i++) live.record(call({ totalMs: 42 }));
    expect(live.overall()).toMatchObject({ p50Ms: 42, p95Ms: 42, p99Ms: 42 });
  });

  it('keeps windows per function and per node', () => {
    const { live } = setup();
    live.record(call({ functionName: 'f', nodeId: 'a', totalMs: 10 }));
    live.record(call({ functionName: 'f', nodeId: 'b', totalMs: 30, success: false }));
    live.record(call({ functionName: 'g', nodeId: 'a', totalMs: 20 }));
    live.record(call({ functionName: 'f', nodeId: '', totalMs: 1 })); // cache hit: no node
    expect(live.forFunction('f')).toMatchObject({ calls: 3, errors: 1 });
    expect(live.forFunction('g')).toMatchObject({ calls: 1, minMs: 20, maxMs: 20 });
    expect(live.forNode('a')).toMatchObject({ calls: 2, errors: 0, avgMs: 15 });
    expect(live.forNode('b')).toMatchObject({ calls: 1, errors: 1, successRate: 0 });
    expect(live.forNode('')).toMatchObject({ calls: 0 });
    expect(live.forFunction('unknown').calls).toBe(0);
    const snap = live.snapshot();
    expect(snap.overall.calls).toBe(4);
    expect(snap.functions.map((f) => [f.functionName, f.calls]).sort()).toEqual([
      ['f', 3],
      ['g', 1],
    ]);
    expect(snap.nodes.map((n) => n.nodeId).sort()).toEqual(['a', 'b']);
  });
});

describe('LiveMetrics node counters', () => {
  it('counts calls and errors per node and their share, beyond the window', () => {
    const { live, at } = setup();
    for (let i = 0; i < 6; i++) live.record(call({ nodeId: 'a' }));
    for (let i = 0; i < 2; i++) live.record(call({ nodeId: 'b', success: false }));
    live.record(call({ nodeId: '' }));
    at(10 * 60_000);
    live.record(call({ nodeId: 'b' }));
    live.record(call({ nodeId: 'c' }));
    expect(live.distribution()).toEqual([
      { nodeId: 'a', calls: 6, errors: 0, share: 0.6 },
      { nodeId: 'b', calls: 3, errors: 2, share: 0.3 },
      { nodeId: 'c', calls: 1, errors: 0, share: 0.1 },
    ]);
    live.forgetNode('a');
    expect(live.distribution()).toEqual([
      { nodeId: 'b', calls: 3, errors: 2, share: 0.75 },
      { nodeId: 'c', calls: 1, errors: 0, share: 0.25 },
    ]);
    expect(live.forNode('a').calls).toBe(0);
  });

  it('prunes windows idle for a whole window but keeps counters', () => {
    const { live, at } = setup();
    live.record(call({ functionName: 'old', nodeId: 'x' }));
    at(60_000);
    live.prune();
    at(0);
    // Back in time the data would still be in the window, had it not been pruned.
    expect(live.forFunction('old').calls).toBe(0);
    expect(live.distribution()).toEqual([{ nodeId: 'x', calls: 1, errors: 0, share: 1 }]);
  });

  it('a series kept across forgetNode and prune counts into fresh windows, as a new name would', () => {
    const { live } = setup();
    const s = live.series('f', 'a');
    live.add(s, START, true, 10);
    live.forgetNode('a');
    live.add(s, START, false, 20);
    expect(live.forNode('a')).toMatchObject({ calls: 1, errors: 1 });
    expect(live.distribution()).toEqual([{ nodeId: 'a', calls: 1, errors: 1, share: 1 }]);
    live.forgetFunction('f');
    live.add(s, START, true, 30);
    expect(live.forFunction('f')).toMatchObject({ calls: 1, minMs: 30 });
    expect(live.overall().calls).toBe(3);
  });

  it('keeps at most MAX_WINDOWS function windows: idle ones are freed, then new names share the overflow window', () => {
    const { live, at } = setup();
    for (let i = 0; i < MAX_WINDOWS; i++) live.record(call({ functionName: `f${i}`, nodeId: '' }));
    // Every window is busy: a new name counts under the overflow window, named as such.
    live.record(call({ functionName: 'one-more', nodeId: '' }));
    live.record(call({ functionName: 'and-another', nodeId: '' }));
    expect(live.forFunction('one-more').calls).toBe(0);
    expect(live.forFunction(OVERFLOW_NAME).calls).toBe(2);
    expect(live.snapshot().functions).toHaveLength(MAX_WINDOWS + 1);
    // A window later, the idle windows are freed and a new name gets its own again.
    at(61_000);
    live.record(call({ functionName: 'fresh', nodeId: '' }));
    expect(live.forFunction('fresh').calls).toBe(1);
    expect(live.snapshot().functions.map((f) => f.functionName)).toEqual(['fresh']);
  });

  it('rejects a window shorter than a bucket', () => {
    expect(() => new LiveMetrics({ windowMs: 500, bucketMs: 1_000 })).toThrow(RangeError);
  });
});

describe('LiveMetrics.lastBucket', () => {
  it('reports the last complete bucket only: not the one filling, not older ones', () => {
    const { live, at } = setup();
    at(1_000);
    for (let i = 0; i < 3; i++) live.record(call({ totalMs: 5 }));
    at(2_000);
    for (let i = 0; i < 4; i++) live.record(call({ functionName: 'g', totalMs: 40, success: i > 0 }));
    at(2_500);
    live.record(call({ functionName: 'g' }));
    // At 2.5 s, second 2 (from 2,000 ms) is filling; second 1 is the last complete one.
    let b = live.lastBucket();
    expect(b).toMatchObject({ at: START + 1_000, seconds: 1, overall: { calls: 3, ratePerSecond: 3 } });
    expect(b.functions).toEqual([expect.objectContaining({ functionName: 'f', calls: 3, p50Ms: 5, p99Ms: 5 })]);
    at(3_100);
    b = live.lastBucket();
    expect(b.at).toBe(START + 2_000);
    expect(b.overall).toMatchObject({ calls: 5, errors: 1 });
    expect(b.functions.map((f) => [f.functionName, f.calls, f.errors])).toEqual([['g', 5, 1]]);
    at(10_000);
    expect(live.lastBucket()).toMatchObject({ at: START + 9_000, overall: { calls: 0 }, functions: [] });
  });

  it('divides by the bucket length for the rate', () => {
    const { live, at } = setup({ bucketMs: 500, windowMs: 10_000 });
    at(500);
    for (let i = 0; i < 10; i++) live.record(call());
    at(1_000);
    expect(live.lastBucket()).toMatchObject({ at: START + 500, seconds: 0.5, overall: { calls: 10, ratePerSecond: 20 } });
  });
});
