import { describe, expect, it } from 'vitest';
import { FakeClock } from '../support/fake-clock.js';

describe('FakeClock', () => {
  it('moves now() and epochMs() together, and only when told', () => {
    const clock = new FakeClock({ now: 100, epochMs: 1_000_000 });
    expect([clock.now(), clock.epochMs()]).toEqual([100, 1_000_000]);
    clock.advance(250);
    expect([clock.now(), clock.epochMs()]).toEqual([350, 1_000_250]);
    clock.jump(50);
    expect([clock.now(), clock.epochMs()]).toEqual([400, 1_000_300]);
  });

  it('fires timers in order of due time, then of scheduling, with the clock at each due time', () => {
    const clock = new FakeClock({ now: 0 });
    const fired: string[] = [];
    const at = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimeout(at('c'), 30);
    clock.setTimeout(at('a'), 10);
    clock.setTimeout(at('b1'), 20);
    clock.setTimeout(at('b2'), 20);
    clock.advance(19);
    expect(fired).toEqual(['a@10']);
    expect(clock.now()).toBe(19);
    clock.advance(100);
    expect(fired).toEqual(['a@10', 'b1@20', 'b2@20', 'c@30']);
    expect(clock.now()).toBe(119);
  });

  it('fires timers that timers schedule within the same advance, and leaves later ones pending', () => {
    const clock = new FakeClock({ now: 0 });
    const fired: number[] = [];
    const tick = () => {
      fired.push(clock.now());
      clock.setTimeout(tick, 25);
    };
    clock.setTimeout(tick, 25);
    clock.advance(100);
    expect(fired).toEqual([25, 50, 75, 100]);
    expect(clock.pendingTimers).toBe(1);
  });

  it('does not fire cleared timers; a zero or negative delay fires on the next advance', () => {
    const clock = new FakeClock({ now: 0 });
    const fired: string[] = [];
    const h = clock.setTimeout(() => fired.push('cleared'), 5);
    clock.setTimeout(() => fired.push('zero'), 0);
    clock.setTimeout(() => fired.push('negative'), -10);
    clock.clearTimeout(h);
    clock.clearTimeout(undefined);
    expect(fired).toEqual([]);
    clock.advance(0);
    expect(fired).toEqual(['zero', 'negative']);
    clock.advance(10);
    expect(fired).toEqual(['zero', 'negative']);
  });

  it('fires late timers (after a jump) on the next advance', () => {
    const clock = new FakeClock({ now: 0 });
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 10);
    clock.jump(50);
    expect(fired).toEqual([]);
    clock.advance(0);
    expect(fired).toHaveLength(1);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});
