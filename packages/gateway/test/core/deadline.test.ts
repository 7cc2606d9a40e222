import { describe, expect, it } from 'vitest';
import { callDeadline, DEADLINE_MARGIN, MAX_DEADLINE_GRACE_MS, type DeadlineInputs } from '../../src/calls/deadline.js';

const NOW = 1_700_000_000_000;

/** The deadline for a caller with `leftMs` to go, on a function with no limit of its own. */
function deadline(fields: Partial<DeadlineInputs> & { leftMs?: number }): number {
  const { leftMs, ...rest } = fields;
  return callDeadline({
    nowMs: NOW,
    callerDeadlineMs: leftMs === undefined ? Infinity : NOW + leftMs,
    graceHeader: undefined,
    functionTimeoutMs: 0,
    defaultTimeoutMs: 3_600_000,
    ...rest,
  });
}

/** How long before the caller's deadline the gateway ends the call. */
const marginFor = (leftMs: number, graceHeader?: string) => NOW + leftMs - deadline({ leftMs, graceHeader });

describe('callDeadline: no caller deadline', () => {
  it("uses the function's own limit", () => {
    expect(deadline({ functionTimeoutMs: 2_500 })).toBe(NOW + 2_500);
  });

  it("uses the gateway's default when the function sets none", () => {
    expect(deadline({ functionTimeoutMs: 0, defaultTimeoutMs: 30_000 })).toBe(NOW + 30_000);
  });

  it('ignores a grace header when there is no deadline to apply it to', () => {
    expect(deadline({ functionTimeoutMs: 1_000, graceHeader: '500' })).toBe(NOW + 1_000);
  });
});

describe('callDeadline: the margin before a caller deadline', () => {
  it('is 5% of the time left between 100 ms and 1 s', () => {
    expect(DEADLINE_MARGIN).toEqual({ share: 0.05, minMs: 5, maxMs: 50 });
    expect(marginFor(200)).toBe(10);
    expect(marginFor(600)).toBe(30);
    expect(marginFor(1_000)).toBe(50);
  });

  it('is at most 50 ms however far away the deadline is', () => {
    expect(marginFor(10_000)).toBe(50);
    expect(marginFor(3_600_000)).toBe(50);
  });

  it('is at least 5 ms, but never more than half the time left', () => {
    expect(marginFor(40)).toBe(5);
    expect(marginFor(10)).toBe(5);
    expect(marginFor(6)).toBe(3);
    expect(marginFor(1)).toBe(0.5);
  });

  it('leaves a deadline that has already passed in the past (the call fails at once)', () => {
    expect(deadline({ leftMs: -100 })).toBeLessThanOrEqual(NOW);
    expect(deadline({ leftMs: 0 })).toBeLessThanOrEqual(NOW);
  });
});

describe('callDeadline: the deadline-grace header', () => {
  it('replaces the margin with the grace the caller claims', () => {
    expect(marginFor(10_000, '300')).toBe(300);
    expect(marginFor(10_000, '1')).toBe(1);
    expect(marginFor(10_000, '2.5')).toBe(2.5);
  });

  it(`is capped at ${MAX_DEADLINE_GRACE_MS} ms`, () => {
    expect(marginFor(60_000, '999999')).toBe(MAX_DEADLINE_GRACE_MS);
    expect(marginFor(60_000, String(MAX_DEADLINE_GRACE_MS))).toBe(MAX_DEADLINE_GRACE_MS);
  });

  it('counts garbage, zero, negative and non-finite values as no grace (the default margin applies)', () => {
    for (const header of ['', 'soon', '-50', '0', 'NaN', 'Infinity', '1e400', '12ms', '0x']) {
      expect(marginFor(1_000, header), `header ${JSON.stringify(header)}`).toBe(50);
    }
  });

  it('may put the deadline in the past when the caller claims more grace than it has left', () => {
    // The caller's real deadline (its gRPC deadline less the grace) has already passed.
    expect(deadline({ leftMs: 1_000, graceHeader: '3000' })).toBe(NOW - 2_000);
  });
});

describe('callDeadline: function limit against caller deadline', () => {
  it("the function's limit wins when it is sooner", () => {
    expect(deadline({ leftMs: 10_000, functionTimeoutMs: 2_000 })).toBe(NOW + 2_000);
  });

  it("the caller's deadline (less its margin) wins when it is sooner", () => {
    expect(deadline({ leftMs: 1_000, functionTimeoutMs: 2_000 })).toBe(NOW + 1_000 - 50);
  });

  it("the gateway's default limit bounds a far caller deadline on a function with no limit", () => {
    expect(deadline({ leftMs: 120_000, functionTimeoutMs: 0, defaultTimeoutMs: 30_000 })).toBe(NOW + 30_000);
  });

  it('a caller deadline exactly at the function limit ends the call at the earlier of the two (the margin)', () => {
    expect(deadline({ leftMs: 2_000, functionTimeoutMs: 2_000 })).toBe(NOW + 2_000 - 50);
  });
});
