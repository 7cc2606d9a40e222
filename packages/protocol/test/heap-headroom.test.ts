import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_HEADROOM_BYTES, growingPercentFor, HeapHeadroom, LIVE_CEILING, MAX_GROWING_PERCENT, type HeapControl } from '../src/heap-headroom.js';

const MiB = 1024 * 1024;

/** A V8 stand-in: the live heap is set by the test, full collections are fired by it. */
class FakeHeap implements HeapControl {
  live = 16 * MiB;
  readonly set: number[] = [];
  readonly listeners = new Set<() => void>();
  constructor(readonly leaveAlone = false) {}
  liveBytes(): number {
    return this.live;
  }
  setGrowingPercent(percent: number): void {
    this.set.push(percent);
  }
  onFullCollection(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  fullCollection(live: number): void {
    this.live = live;
    for (const l of this.listeners) l();
  }
}

describe('growingPercentFor', () => {
  it('makes the next limit the live heap plus the headroom', () => {
    expect(growingPercentFor(16 * MiB, 64 * MiB)).toBe(400);
    expect(growingPercentFor(48 * MiB, 64 * MiB)).toBe(134);
    expect(growingPercentFor(100 * MiB, 64 * MiB)).toBe(64);
  });
  it('leaves V8 its own factor at or above the ceiling, and for no headroom', () => {
    expect(growingPercentFor(LIVE_CEILING * 64 * MiB, 64 * MiB)).toBe(0);
    expect(growingPercentFor(LIVE_CEILING * 64 * MiB - 1, 64 * MiB)).toBe(26);
    expect(growingPercentFor(16 * MiB, 0)).toBe(0);
    expect(growingPercentFor(0, 64 * MiB)).toBe(0);
  });
  it('caps the percent of a nearly empty heap', () => {
    expect(growingPercentFor(1024, 64 * MiB)).toBe(MAX_GROWING_PERCENT);
  });
});

describe('HeapHeadroom', () => {
  it('sets the percent at once and again after each full collection, and clears it on release', () => {
    const heap = new FakeHeap();
    const headroom = new HeapHeadroom(heap);
    const release = headroom.hold(64 * MiB);
    expect(heap.set).toEqual([400]);
    heap.fullCollection(32 * MiB);
    heap.fullCollection(32 * MiB); // unchanged: not set again
    heap.fullCollection(300 * MiB); // past the ceiling: V8 chooses
    expect(heap.set).toEqual([400, 200, 0]);
    expect(headroom.growingPercent).toBe(0);
    heap.fullCollection(16 * MiB);
    release();
    expect(heap.set).toEqual([400, 200, 0, 400, 0]);
    expect(heap.listeners.size).toBe(0);
    release(); // twice: nothing more
    expect(heap.set).toEqual([400, 200, 0, 400, 0]);
  });

  it('applies the largest headroom held, until its holder releases it', () => {
    const heap = new FakeHeap();
    const headroom = new HeapHeadroom(heap);
    const small = headroom.hold(16 * MiB);
    const large = headroom.hold(64 * MiB);
    expect(heap.set).toEqual([100, 400]);
    expect(heap.listeners.size).toBe(1);
    large();
    expect(heap.set).toEqual([100, 400, 100]);
    expect(heap.listeners.size).toBe(1);
    small();
    expect(heap.set).toEqual([100, 400, 100, 0]);
    expect(heap.listeners.size).toBe(0);
  });

  it('holds nothing for 0 bytes, nor where V8 is left alone (own --heap-growing-percent, a worker thread)', () => {
    const heap = new FakeHeap();
    new HeapHeadroom(heap).hold(0)();
    const own = new FakeHeap(true);
    const release = new HeapHeadroom(own).hold(DEFAULT_HEAP_HEADROOM_BYTES);
    own.fullCollection(8 * MiB);
    release();
    expect([...heap.set, ...own.set]).toEqual([]);
    expect(own.listeners.size).toBe(0);
  });
});

describe('in a real V8', () => {
  const fixture = fileURLToPath(new URL('./fixtures/heap-churn.ts', import.meta.url));
  const majors = async (hold: boolean): Promise<number> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', fixture], { env: { ...process.env, HOLD: hold ? '1' : '0' }, timeout: 60_000 });
    const m = /majors (\d+)/.exec(stdout);
    if (!m) throw new Error(`no count in ${JSON.stringify(stdout)}`);
    return Number(m[1]);
  };

  it('a relay-like churn of short-lived buffers runs a fraction of the full collections with 64 MiB of headroom held', async () => {
    const without = await majors(false);
    const held = await majors(true);
    // Without: a full collection every few MB of buffers (about 20 over the 200 MiB churned).
    expect(without).toBeGreaterThanOrEqual(10);
    expect(held).toBeLessThanOrEqual(without / 3);
  }, 120_000);
});
