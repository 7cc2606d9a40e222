// The grace a stopping gateway gives its open calls, in fake time: it ends when the last
// call finishes or when the grace runs out, whichever is first; asked again, only a
// shorter grace counts.
import { describe, expect, it } from 'vitest';
import { OpenCalls } from '../../src/calls/open-calls.js';
import { FakeClock } from '../support/fake-clock.js';

/** The promise's value once it settled, or 'pending'. */
async function state<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
}

describe('OpenCalls.settled', () => {
  it('resolves at once with 0 when no call is open, whatever the grace', async () => {
    const open = new OpenCalls(new FakeClock());
    await expect(state(open.settled(10_000))).resolves.toBe(0);
  });

  it('resolves with 0 when the last open call finishes within the grace', async () => {
    const clock = new FakeClock();
    const open = new OpenCalls(clock);
    open.opened();
    open.opened();
    const settled = open.settled(10_000);
    clock.advance(4_000);
    open.closed();
    expect(await state(settled)).toBe('pending');
    clock.advance(4_000);
    open.closed();
    expect(await state(settled)).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('resolves with the calls still open when the grace runs out, not a millisecond before', async () => {
    const clock = new FakeClock();
    const open = new OpenCalls(clock);
    for (let i = 0; i < 3; i++) open.opened();
    const settled = open.settled(10_000);
    open.closed();
    clock.advance(9_999);
    expect(await state(settled)).toBe('pending');
    clock.advance(1);
    expect(await state(settled)).toBe(2);
    expect(open.size).toBe(2);
  });

  it('a grace of 0 resolves at once with the open calls', async () => {
    const open = new OpenCalls(new FakeClock());
    open.opened();
    await expect(state(open.settled(0))).resolves.toBe(1);
  });

  it('asked again with a shorter grace, ends earlier; with a longer one, keeps the first end', async () => {
    const clock = new FakeClock();
    const open = new OpenCalls(clock);
    open.opened();
    const first = open.settled(10_000);
    clock.advance(1_000);
    const longer = open.settled(60_000);
    expect(longer).toBe(first);
    clock.advance(8_999);
    expect(await state(first)).toBe('pending');
    const shorter = open.settled(0);
    expect(shorter).toBe(first);
    expect(await state(first)).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a shorter grace later reschedules the end from now', async () => {
    const clock = new FakeClock();
    const open = new OpenCalls(clock);
    open.opened();
    const settled = open.settled(10_000);
    clock.advance(2_000);
    void open.settled(3_000);
    clock.advance(2_999);
    expect(await state(settled)).toBe('pending');
    clock.advance(1);
    expect(await state(settled)).toBe(1);
  });

  it('never counts below zero', () => {
    const open = new OpenCalls(new FakeClock());
    open.closed();
    open.opened();
    expect(open.size).toBe(1);
  });
});
