import { describe, expect, it } from 'vitest';
import { CallAbort } from '../src/call-abort.js';

describe('CallAbort', () => {
  it('a signal read before the abort fires once, with the first reason', () => {
    const a = new CallAbort();
    const signal = a.signal;
    expect(a.signal).toBe(signal);
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    a.abort('first');
    a.abort('second');
    expect(a.aborted).toBe(true);
    expect(a.reason).toBe('first');
    expect(signal.aborted).toBe(true);
    expect(seen).toEqual(['first']);
  });

  it('a signal read only after the abort is already aborted with its reason', () => {
    const a = new CallAbort();
    const reason = new Error('deadline');
    a.abort(reason);
    a.abort(new Error('later'));
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBe(reason);
  });

  it('is not aborted until abort() is called', () => {
    const a = new CallAbort();
    expect(a.aborted).toBe(false);
    expect(a.reason).toBeUndefined();
    expect(a.signal.aborted).toBe(false);
  });
});
