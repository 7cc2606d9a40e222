import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SLOW_START_MIN_WEIGHT,
  DEFAULT_SLOW_START_WINDOW_MS,
  slowStartWeight,
} from '../../src/health/slow-start.js';

describe('slowStartWeight', () => {
  const joined = 50_000;

  it('ramps linearly from the minimum weight to 1 over the default 10 s window', () => {
    expect(DEFAULT_SLOW_START_WINDOW_MS).toBe(10_000);
    expect(DEFAULT_SLOW_START_MIN_WEIGHT).toBe(0.1);
    expect(slowStartWeight(joined, joined)).toBeCloseTo(0.1, 12);
    expect(slowStartWeight(joined, joined + 2_500)).toBeCloseTo(0.325, 12);
    expect(slowStartWeight(joined, joined + 5_000)).toBeCloseTo(0.55, 12);
    expect(slowStartWeight(joined, joined + 9_000)).toBeCloseTo(0.91, 12);
    expect(slowStartWeight(joined, joined + 10_000)).toBe(1);
    expect(slowStartWeight(joined, joined + 3_600_000)).toBe(1);
  });

  it('rises monotonically and stays within [minWeight, 1]', () => {
    let previous = 0;
    for (let t = -1_000; t <= 12_000; t += 250) {
      const w = slowStartWeight(joined, joined + t);
      expect(w).toBeGreaterThanOrEqual(previous);
      expect(w).toBeGreaterThanOrEqual(0.1);
      expect(w).toBeLessThanOrEqual(1);
      previous = w;
    }
  });

  it('takes a custom window and floor', () => {
    expect(slowStartWeight(0, 0, 60_000, 0.5)).toBe(0.5);
    expect(slowStartWeight(0, 30_000, 60_000, 0.5)).toBeCloseTo(0.75, 12);
    expect(slowStartWeight(0, 60_000, 60_000, 0.5)).toBe(1);
    expect(slowStartWeight(0, 10_000, 60_000, 0.5)).toBeLessThan(1);
  });

  it('treats a join time in the future as just joined', () => {
    expect(slowStartWeight(joined, joined - 5_000)).toBeCloseTo(0.1, 12);
  });

  it('is disabled by a window of zero and never returns 0 or NaN', () => {
    expect(slowStartWeight(joined, joined, 0)).toBe(1);
    expect(slowStartWeight(joined, joined, -5)).toBe(1);
    expect(slowStartWeight(joined, joined, 10_000, 0)).toBeGreaterThan(0);
    expect(slowStartWeight(joined, joined, 10_000, 2)).toBe(1);
    expect(slowStartWeight(Number.NaN, joined)).toBe(1);
    expect(Number.isNaN(slowStartWeight(joined, joined, 10_000, Number.NaN))).toBe(false);
  });
});
