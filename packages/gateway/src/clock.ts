// Time for every decision the gateway makes: one object, injected at the composition
// root, so that leases, deadlines, ejections and learning can be tested with fake time.

export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout;

export interface Clock {
  /** Monotonic milliseconds: durations, ages, leases. Never jumps with the wall clock. */
  now(): number;
  /** Unix epoch milliseconds: deadlines that travel to nodes, row timestamps, time of day. */
  epochMs(): number;
  /** Runs `fn` once after `ms`. Timers never keep the process alive. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** Uniform in [0, 1): every chance-dependent decision draws from one injected source. */
export type RandomSource = () => number;

export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
};
