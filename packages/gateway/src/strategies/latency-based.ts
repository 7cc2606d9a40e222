import { candidateLoad } from './least-load.js';
import { pickRandom } from './random.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** Expected latency of a node with no call history and no RTT yet (ms). */
export const DEFAULT_PRIOR_LATENCY_MS = 100;
/** Seed 002: a fully loaded node is expected to answer 1.5× slower than an idle one. */
export const DEFAULT_LOAD_PENALTY = 0.5;

export interface LatencyBasedOptions {
  priorLatencyMs?: number;
  loadPenalty?: number;
  /** Function-level defaults; a call's preferences override them. */
  maxLatencyMs?: number;
  preferLocation?: string;
}

/**
 * Lowest expected latency:
 *
 *   base     = history.ewmaLatencyMs, else rttMs (no calls yet), else priorLatencyMs
 *   expected = base × (1 + load × loadPenalty)          load as least_load defines it
 *
 * With maxLatencyMs, nodes expected above it are dropped, and if none is left the
 * strategy returns none (the router's fallback decides what happens). With preferLocation,
 * only nodes labelled with that location are considered when at least one is left.
 */
export class LatencyBasedStrategy implements Strategy {
  readonly name = 'latency_based';
  private readonly priorLatencyMs: number;
  private readonly loadPenalty: number;
  private readonly maxLatencyMs: number | undefined;
  private readonly preferLocation: string | undefined;

  constructor(options: LatencyBasedOptions = {}) {
    this.priorLatencyMs = options.priorLatencyMs ?? DEFAULT_PRIOR_LATENCY_MS;
    this.loadPenalty = options.loadPenalty ?? DEFAULT_LOAD_PENALTY;
    this.maxLatencyMs = options.maxLatencyMs;
    this.preferLocation = options.preferLocation;
  }

  expectedLatencyMs(c: Candidate): number {
    const base = c.history.ewmaLatencyMs > 0 ? c.history.ewmaLatencyMs : (c.rttMs ?? this.priorLatencyMs);
    return base * (1 + candidateLoad(c) * this.loadPenalty);
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    const maxLatencyMs = context.preferences.maxLatencyMs ?? this.maxLatencyMs;
    const location = context.preferences.preferLocation ?? this.preferLocation;
    let pool = candidates.map((c) => ({ c, expected: this.expectedLatencyMs(c) }));
    if (maxLatencyMs !== undefined) pool = pool.filter((e) => e.expected <= maxLatencyMs);
    if (location !== undefined) {
      const local = pool.filter((e) => e.c.capabilities.labels['location'] === location);
      if (local.length > 0) pool = local;
    }
    if (pool.length === 0) return undefined;
    const lowest = Math.min(...pool.map((e) => e.expected));
    return pickRandom(pool.filter((e) => e.expected === lowest), context.random)?.c;
  }
}
