import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { Scheduler } from '../src/scheduler.js';

describe('Scheduler', () => {
  it('runs up to maxConcurrent, queues up to queueSize, refuses beyond', () => {
    const s = new Scheduler();
    const f = s.owner('f', 2, 1);
    const started: number[] = [];
    const admit = (i: number) => s.admit(f, () => started.push(i)).admission;
    expect([admit(1), admit(2), admit(3), admit(4)]).toEqual(['started', 'started', 'queued', 'refused']);
    expect(started).toEqual([1, 2]);
    s.release(f);
    expect(started).toEqual([1, 2, 3]);
  });

  it('gives a freed node-wide slot to the waiting call with the highest priority, FIFO within one', () => {
    const s = new Scheduler(1);
    const low = s.owner('low', undefined, undefined, 0);
    const high = s.owner('high', undefined, undefined, 5);
    const order: string[] = [];
    s.admit(low, () => order.push('low-1'));
    s.admit(low, () => order.push('low-2'));
    s.admit(high, () => order.push('high-1'));
    s.admit(high, () => order.push('high-2'));
    expect(order).toEqual(['low-1']);
    for (let i = 0; i < 3; i++) s.release(order.at(-1)!.startsWith('low') ? low : high);
    expect(order).toEqual(['low-1', 'high-1', 'high-2', 'low-2']);
  });

  it('a withdrawn (cancelled) queued call never starts', () => {
    const s = new Scheduler();
    const f = s.owner('f', 1, 5);
    const order: string[] = [];
    s.admit(f, () => order.push('a'));
    const { job } = s.admit(f, () => order.push('b'));
    s.admit(f, () => order.push('c'));
    expect(s.withdraw(job!)).toBe(true);
    s.release(f);
    expect(order).toEqual(['a', 'c']);
  });
});

describe('Backoff', () => {
  it('grows exponentially with jitter between half and the full ceiling, capped, and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
    const top = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect(top.next()).toBeCloseTo(100, 3);
    b.reset();
    expect(b.next()).toBe(50);
  });
});
