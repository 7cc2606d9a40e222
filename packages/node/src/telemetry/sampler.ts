// Samples telemetry on a timer so heartbeats and routing decisions read a cached figure
// instead of waiting on the OS (si.graphics() can take tens of ms and block the loop).

import type { TelemetryProvider, TelemetrySample } from './provider.js';

export const DEFAULT_SAMPLE_INTERVAL_MS = 1_000;

export interface TelemetrySamplerOptions {
  /** Time between samples (ms). */
  intervalMs?: number;
  /** Told about every failed sample; the sampler itself only counts them. */
  onError?: (error: unknown) => void;
  /** Clock for `stats().lastSampleAt` (ms). */
  now?: () => number;
}

export interface TelemetrySamplerStats {
  /** Samples that succeeded. */
  samples: number;
  /** Samples whose provider threw or rejected. */
  errors: number;
  /** Ticks skipped because the previous sample was still running. */
  skipped: number;
  /** Clock time of the latest successful sample; undefined before the first. */
  lastSampleAt: number | undefined;
  lastError: unknown;
}

export class TelemetrySampler {
  private readonly intervalMs: number;
  private readonly onError: ((error: unknown) => void) | undefined;
  private readonly now: () => number;

  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private last: TelemetrySample | undefined;
  private lastSampleAt: number | undefined;
  private samples = 0;
  private errors = 0;
  private skipped = 0;
  private lastError: unknown;

  constructor(
    private readonly provider: TelemetryProvider,
    options: TelemetrySamplerOptions = {},
  ) {
    const interval = options.intervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    if (!(Number.isFinite(interval) && interval > 0)) {
      throw new RangeError(`intervalMs must be a positive number, got ${interval}`);
    }
    this.intervalMs = interval;
    this.onError = options.onError;
    this.now = options.now ?? Date.now;
  }

  /** Takes a sample now and then every interval. Calling it again while running does nothing. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // Telemetry alone must never keep a node process alive.
    this.timer.unref();
    this.tick();
  }

  /** Stops the timer. A sample already running finishes and still updates latest(). */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  isRunning(): boolean {
    return this.timer !== undefined;
  }

  /** The most recent successful sample; undefined until the first one completes. */
  latest(): TelemetrySample | undefined {
    return this.last;
  }

  /**
   * Samples once, or joins the sample already running, and resolves when it is done
   * (never rejects). Lets a node wait for its first figures before registering.
   */
  runOnce(): Promise<void> {
    if (this.inFlight !== undefined) return this.inFlight;
    const run = this.sampleOnce();
    this.inFlight = run;
    // Cleared in a callback rather than inside sampleOnce: a provider that throws
    // synchronously would otherwise clear the slot before it was set, and the stale
    // promise would block every later tick.
    void run.finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
    return run;
  }

  stats(): TelemetrySamplerStats {
    return {
      samples: this.samples,
      errors: this.errors,
      skipped: this.skipped,
      lastSampleAt: this.lastSampleAt,
      lastError: this.lastError,
    };
  }

  private tick(): void {
    if (this.inFlight !== undefined) {
      this.skipped += 1;
      return;
    }
    void this.runOnce();
  }

  private async sampleOnce(): Promise<void> {
    try {
      const sample = await this.provider.sample();
      this.last = sample;
      this.lastSampleAt = this.now();
      this.samples += 1;
    } catch (error) {
      this.errors += 1;
      this.lastError = error;
      try {
        this.onError?.(error);
      } catch {
        // A faulty error hook must not turn into an unhandled rejection.
      }
    }
  }
}
