export const INITIAL_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5_000;
export const BACKOFF_MULTIPLIER = 2;

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  multiplier?: number;
  random?: () => number;
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random, so a fleet of nodes does not reconnect in lockstep after a gateway restart. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? INITIAL_BACKOFF_MS;
    this.maxMs = options.maxMs ?? MAX_BACKOFF_MS;
    this.multiplier = options.multiplier ?? BACKOFF_MULTIPLIER;
    this.random = options.random ?? Math.random;
  }

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.multiplier ** this.attempt);
    this.attempt++;
    return ceiling / 2 + (this.random() * ceiling) / 2;
  }

  /** Delays handed out since the last reset: the number of the retry the latest one is for. */
  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
