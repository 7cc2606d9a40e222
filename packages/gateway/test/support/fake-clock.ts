// A Clock that moves only when a test says so. Timers are virtual: they fire, in order of
// due time (then of scheduling), during advance(), and timers scheduled by those timers
// fire in the same advance when they fall within it.
import type { Clock, TimerHandle } from '../../src/clock.js';

/** Where fake time starts: far from 0, so code that treats 0 as "unset" is not fooled. */
export const FAKE_MONOTONIC_START = 1_000_000;
/** 2023-11-14T22:13:20Z. */
export const FAKE_EPOCH_START = 1_700_000_000_000;

interface VirtualTimer {
  readonly seq: number;
  readonly due: number;
  readonly fn: () => void;
}

export class FakeClock implements Clock {
  private monotonic: number;
  private readonly epochOffset: number;
  private seq = 0;
  private readonly timers = new Map<number, VirtualTimer>();

  constructor(start: { now?: number; epochMs?: number } = {}) {
    this.monotonic = start.now ?? FAKE_MONOTONIC_START;
    this.epochOffset = (start.epochMs ?? FAKE_EPOCH_START) - this.monotonic;
  }

  now(): number {
    return this.monotonic;
  }

  epochMs(): number {
    return this.monotonic + this.epochOffset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const seq = ++this.seq;
    // Like Node: a negative or NaN delay means "as soon as possible".
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.timers.set(seq, { seq, due: this.monotonic + delay, fn });
    return { seq } as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.timers.delete((handle as unknown as { seq: number }).seq);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance needs a non-negative duration, got ${ms}`);
    const target = this.monotonic + ms;
    for (let t = this.nextDue(target); t !== undefined; t = this.nextDue(target)) {
      this.timers.delete(t.seq);
      this.monotonic = t.due;
      t.fn();
    }
    this.monotonic = target;
  }

  /**
   * Moves time forward without firing anything: an event loop that was busy, whose
   * timers are late. They fire on the next advance().
   */
  jump(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`jump needs a non-negative duration, got ${ms}`);
    this.monotonic += ms;
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  private nextDue(limit: number): VirtualTimer | undefined {
    let next: VirtualTimer | undefined;
    for (const t of this.timers.values()) {
      if (t.due <= limit && (next === undefined || t.due < next.due || (t.due === next.due && t.seq < next.seq))) next = t;
    }
    return next;
  }
}
