// A node that just joined gets a small share of traffic that grows to a full share over
// a window, so a cold process (JIT, model weights loading, empty caches) is not handed
// a whole pool's worth of calls the moment it registers.

export const DEFAULT_SLOW_START_WINDOW_MS = 10_000;
export const DEFAULT_SLOW_START_MIN_WEIGHT = 0.1;
/** Strategies take a candidate's weight to be > 0 (weighted picks divide by it). */
const SMALLEST_WEIGHT = 0.01;

/**
 * Weight in [minWeight, 1] for a provider that joined at `joinedAt` (ms, same clock as
 * `now`): minWeight at the moment it joins, rising linearly to 1 at `joinedAt + windowMs`,
 * and 1 from then on. Linear is the simplest ramp whose traffic share is predictable
 * for operators; the floor keeps a new node from being starved of the few calls that
 * warm it up. A join time in the future (clock skew) counts as "just joined"; a window of
 * zero or less disables slow start. minWeight is kept within [0.01, 1].
 */
export function slowStartWeight(
  joinedAt: number,
  now: number,
  windowMs: number = DEFAULT_SLOW_START_WINDOW_MS,
  minWeight: number = DEFAULT_SLOW_START_MIN_WEIGHT,
): number {
  const floor = Number.isFinite(minWeight) ? Math.min(1, Math.max(SMALLEST_WEIGHT, minWeight)) : DEFAULT_SLOW_START_MIN_WEIGHT;
  if (!(windowMs > 0)) return 1;
  const elapsed = now - joinedAt;
  // An unknown join time says nothing about warmth; treating the node as established
  // avoids pinning it at the floor forever.
  if (Number.isNaN(elapsed)) return 1;
  if (elapsed <= 0) return floor;
  if (elapsed >= windowMs) return 1;
  return floor + (1 - floor) * (elapsed / windowMs);
}
