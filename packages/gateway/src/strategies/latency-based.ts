import { candidateLoad, clamp, ewmaLatencyOf, replacesTie, rttOf } from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Expected latency of a node with no call history and no RTT yet (ms). */
export const DEFAULT_PRIOR_LATENCY_MS = 100;
/** A fully loaded node is expected to answer 1.5× slower than an idle one. */
export const DEFAULT_LOAD_PENALTY = 0.5;

export const LATENCY_BASED_OPTIONS = {
  priorLatencyMs: { type: 'number', min: 0 },
  loadPenalty: { type: 'number', min: 0 },
  /** Function-level default; a call's preferences override it. Configs often spell it max_latency. */
  maxLatencyMs: { type: 'number', min: 0, aliases: ['maxLatency'] },
  /** Function-level default; a call's preferences override it. */
  preferLocation: { type: 'string' },
} as const;

export type LatencyBasedOptions = OptionsOf<typeof LATENCY_BASED_OPTIONS>;

/** Lowest expected latency seen so far in one pass, with random choice among exact ties. */
class Best {
  candidate: Candidate | undefined = undefined;
  expected = Infinity;
  ties = 0;

  offer(c: Candidate, expected: number, random: () => number): void {
    if (this.candidate === undefined || expected < this.expected) {
      this.candidate = c;
      this.expected = expected;
      this.ties = 1;
    } else if (expected === this.expected && replacesTie(++this.ties, random)) {
      this.candidate = c;
    }
  }

  reset(): void {
    this.candidate = undefined;
    this.expected = Infinity;
    this.ties = 0;
  }
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
  private readonly anywhere = new Best();
  private readonly local = new Best();

  constructor(options: LatencyBasedOptions = {}) {
    this.priorLatencyMs = clamp(options.priorLatencyMs ?? DEFAULT_PRIOR_LATENCY_MS, 0, Number.MAX_VALUE);
    this.loadPenalty = clamp(options.loadPenalty ?? DEFAULT_LOAD_PENALTY, 0, Number.MAX_VALUE);
    this.maxLatencyMs = options.maxLatencyMs;
    this.preferLocation = options.preferLocation;
  }

  /** Never NaN: a figure that cannot be computed reads as infinitely slow. */
  expectedLatencyMs(c: Candidate): number {
    const ewma = ewmaLatencyOf(c);
    const base = ewma > 0 ? ewma : (rttOf(c) ?? this.priorLatencyMs);
    const expected = base * (1 + candidateLoad(c) * this.loadPenalty);
    return expected <= Infinity ? expected : Infinity;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    const limit = context.preferences.maxLatencyMs;
    // A limit that is not a number (NaN from a broken client) is no limit.
    const maxLatencyMs = typeof limit === 'number' && !Number.isNaN(limit) ? limit : this.maxLatencyMs;
    const location = context.preferences.preferLocation ?? this.preferLocation;
    const { anywhere, local } = this;
    anywhere.reset();
    local.reset();
    for (const c of candidates) {
      const expected = this.expectedLatencyMs(c);
      if (maxLatencyMs !== undefined && !(expected <= maxLatencyMs)) continue;
      anywhere.offer(c, expected, context.random);
      if (location !== undefined && c.capabilities.labels['location'] === location) local.offer(c, expected, context.random);
    }
    const picked = local.candidate ?? anywhere.candidate;
    // Drop the references so a departed node's snapshot is not kept alive by this instance.
    anywhere.reset();
    local.reset();
    return picked;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'latency_based', schema: LATENCY_BASED_OPTIONS, create: (options) => new LatencyBasedStrategy(options) });
}
