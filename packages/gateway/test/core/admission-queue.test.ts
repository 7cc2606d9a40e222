import { describe, expect, it } from 'vitest';
import { AdmissionQueue, DEFAULT_GATEWAY_QUEUE_SIZE } from '../../src/calls/admission-queue.js';
import type { PendingCall } from '../../src/calls/pending-call.js';
import { Core } from '../support/core-harness.js';

/** Unstarted calls of two functions: the queue is a plain data structure, no dispatch involved. */
function setup() {
  const core = new Core();
  core.addNode('n1', [{ name: 'f' }, { name: 'g' }]);
  const make = (fn: string) => core.call(fn, { start: false }).call;
  return { make };
}

const ids = (calls: Array<PendingCall | undefined>) => calls.map((c) => c?.id);

describe('AdmissionQueue', () => {
  it('holds at most `limit` calls per function and refuses the next, flagging what it holds', () => {
    const { make } = setup();
    const q = new AdmissionQueue(2);
    const [a, b, c] = [make('f'), make('f'), make('f')];
    expect(q.enqueue(a)).toBeUndefined();
    expect(q.enqueue(b)).toBeUndefined();
    expect(q.enqueue(c)).toEqual({ name: 'gateway_queue_size', limit: 2, actual: 3 });
    expect([a.queued, b.queued, c.queued]).toEqual([true, true, false]);
    expect(q.size('f')).toBe(2);
    // The bound is per function: another function still has room.
    expect(q.enqueue(make('g'))).toBeUndefined();
    expect(q.size('g')).toBe(1);
    expect(q.size('h')).toBe(0);
  });

  it('defaults to DEFAULT_GATEWAY_QUEUE_SIZE per function', () => {
    const { make } = setup();
    const q = new AdmissionQueue();
    expect(q.limitPerFunction).toBe(DEFAULT_GATEWAY_QUEUE_SIZE);
    for (let i = 0; i < DEFAULT_GATEWAY_QUEUE_SIZE; i++) expect(q.enqueue(make('f'))).toBeUndefined();
    expect(q.enqueue(make('f'))).toMatchObject({ name: 'gateway_queue_size', limit: DEFAULT_GATEWAY_QUEUE_SIZE });
  });

  it('hands calls out oldest first, per function', () => {
    const { make } = setup();
    const q = new AdmissionQueue(10);
    const f = [make('f'), make('f'), make('f')];
    const g = make('g');
    q.enqueue(f[0]!);
    q.enqueue(g);
    q.enqueue(f[1]!);
    q.enqueue(f[2]!);
    const entry = f[0]!.entry;
    expect(ids([q.next(entry), q.next(entry), q.next(entry), q.next(entry)])).toEqual([...ids(f), undefined]);
    expect(f.every((c) => !c.queued)).toBe(true);
    expect(q.size('f')).toBe(0);
    expect(q.next(g.entry)).toBe(g);
  });

  it('removes a call from anywhere in the queue; removing a call that is not queued changes nothing', () => {
    const { make } = setup();
    const q = new AdmissionQueue(10);
    const [a, b, c] = [make('f'), make('f'), make('f')];
    for (const call of [a, b, c]) q.enqueue(call);
    q.remove(b);
    expect(b.queued).toBe(false);
    expect(q.size('f')).toBe(2);
    q.remove(b);
    q.remove(make('f'));
    expect(q.size('f')).toBe(2);
    expect(ids([q.next(a.entry), q.next(a.entry)])).toEqual(ids([a, c]));
    // Room freed by a removal is room again.
    const small = new AdmissionQueue(1);
    small.enqueue(a);
    small.remove(a);
    expect(small.enqueue(c)).toBeUndefined();
  });

  it('bounds the bytes of queued arguments across functions, and frees them as calls leave', () => {
    const { make } = setup();
    const withArgs = (fn: string, bytes: number) => Object.assign(make(fn), { args: Buffer.alloc(bytes) }) as PendingCall;
    const q = new AdmissionQueue(100, 1000);
    const a = withArgs('f', 600);
    const b = withArgs('g', 300);
    expect(q.enqueue(a)).toBeUndefined();
    expect(q.enqueue(b)).toBeUndefined();
    expect(q.queuedBytes).toBe(900);
    expect(q.enqueue(withArgs('f', 200))).toEqual({ name: 'gateway_queue_bytes', limit: 1000, actual: 1100 });
    expect(q.next(a.entry)).toBe(a);
    expect(q.queuedBytes).toBe(300);
    expect(q.enqueue(withArgs('f', 700))).toBeUndefined();
    q.remove(b);
    expect(q.takeAll()).toHaveLength(1);
    expect(q.queuedBytes).toBe(0);
  });

  it('next skips calls that finished while waiting, taking them off the queue', () => {
    const { make } = setup();
    const q = new AdmissionQueue(10);
    const [a, b, c] = [make('f'), make('f'), make('f')];
    for (const call of [a, b, c]) q.enqueue(call);
    a.done = true;
    b.done = true;
    expect(q.next(a.entry)).toBe(c);
    expect([a.queued, b.queued]).toEqual([false, false]);
    expect(q.size('f')).toBe(0);
    expect(q.next(a.entry)).toBeUndefined();
  });

  it('takeAll empties every queue and returns what it held', () => {
    const { make } = setup();
    const q = new AdmissionQueue(10);
    const all = [make('f'), make('g'), make('f')];
    for (const call of all) q.enqueue(call);
    const taken = q.takeAll();
    expect(new Set(ids(taken))).toEqual(new Set(ids(all)));
    expect(taken).toHaveLength(3);
    expect(all.every((c) => !c.queued)).toBe(true);
    expect([q.size('f'), q.size('g')]).toEqual([0, 0]);
    expect(q.takeAll()).toEqual([]);
  });

  it('a limit of 0 (or less) refuses everything', () => {
    const { make } = setup();
    for (const limit of [0, -1]) {
      const q = new AdmissionQueue(limit);
      const call = make('f');
      expect(q.enqueue(call)).toMatchObject({ name: 'gateway_queue_size' });
      expect(call.queued).toBe(false);
      expect(q.size('f')).toBe(0);
    }
  });
});
