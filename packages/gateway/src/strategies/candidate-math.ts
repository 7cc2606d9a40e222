// Arithmetic over candidates shared by the strategies: reading a figure safely, slots,
// load, cost, weight, and random choice. Every reader here treats a non-finite or
// out-of-range figure as unknown (nodes report from any language, clocks and counters can
// misbehave), so a strategy built on them cannot produce NaN scores from bad telemetry.
import type { Candidate, TelemetrySnapshot } from './strategy.js';

/** Share of the load figure taken from reported CPU; the rest is slot occupancy. */
export const DEFAULT_CPU_WEIGHT = 0.5;
/** Tier assumed when a function declares none (0) or an unusable one. */
export const DEFAULT_PERFORMANCE_TIER = 1;
/** Tiers are small integers in practice; the cap keeps sums of weights finite. */
const MAX_PERFORMANCE_TIER = 1e6;

/** x when it is a finite number, else `fallback`. */
export function finiteOr(x: number, fallback: number): number {
  return Number.isFinite(x) ? x : fallback;
}

/** x within [lo, hi]; NaN reads as lo. */
export function clamp(x: number, lo: number, hi: number): number {
  return x > lo ? (x < hi ? x : hi) : lo;
}

export function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0;
}

/** A count or a size: finite and at least 0, else 0 (unknown counts as nothing). */
export function nonNegative(x: number): number {
  return x > 0 && x < Infinity ? x : 0;
}

/**
 * An index in [0, n) from the injected random source. The guards absorb a source that
 * breaks its [0, 1) contract (1, NaN, negative): they cost a comparison each.
 */
export function randomIndex(n: number, random: () => number): number {
  const i = Math.floor(random() * n);
  return i >= 0 ? (i < n ? i : n - 1) : 0;
}

/** One element chosen uniformly with the injected random source; undefined when empty. */
export function pickRandom<T>(items: readonly T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined;
  return items[randomIndex(items.length, random)];
}

/**
 * Reservoir sampling of one item among ties met one at a time: the k-th tie replaces the
 * current pick with probability 1/k, so each of the k is kept with probability 1/k, and no
 * list of ties is ever built. The first is always taken (and costs no random draw).
 */
export function replacesTie(ties: number, random: () => number): boolean {
  return ties === 1 || random() * ties < 1;
}

/**
 * Calls of this function on the node as strategies count them: this gateway's own in
 * flight (exact, moving with every dispatch) plus what the node reported beyond them at
 * its last heartbeat (its other gateways' calls; see registry/reported-load.ts).
 */
export function inFlightOf(c: Candidate): number {
  return nonNegative(c.inFlight) + nonNegative(c.inFlightElsewhere ?? 0);
}

/** How many calls of the function the node can run at once, for occupancy: always >= 1. */
export function concurrencySlots(c: Candidate): number {
  if (c.maxConcurrent >= 1 && c.maxConcurrent < Infinity) return c.maxConcurrent;
  // Unlimited (0) or unusable: a core per call is the natural unit for CPU-bound handlers.
  const cores = c.capabilities.cpuCores;
  return cores > 1 && cores < Infinity ? cores : 1;
}

/** Calls in flight per slot: 0 idle, 1 full, above 1 when an unlimited node has more calls than cores. */
export function occupancy(c: Candidate): number {
  return inFlightOf(c) / concurrencySlots(c);
}

/** Reported CPU use as a fraction in [0, 1]; undefined without a usable figure. */
export function cpuFraction(t: TelemetrySnapshot | undefined): number | undefined {
  if (t === undefined || !Number.isFinite(t.cpuPercent)) return undefined;
  return clamp01(t.cpuPercent / 100);
}

/** Memory in use as a fraction in [0, 1]; the declared total stands in for a missing one. */
export function memoryUsedFraction(c: Candidate): number | undefined {
  const t = c.telemetry;
  if (t === undefined || !Number.isFinite(t.memoryUsedBytes)) return undefined;
  const total = t.memoryTotalBytes > 0 && t.memoryTotalBytes < Infinity ? t.memoryTotalBytes : c.capabilities.memoryTotalBytes;
  if (!(total > 0 && total < Infinity)) return undefined;
  return clamp01(t.memoryUsedBytes / total);
}

type GpuTelemetry = TelemetrySnapshot['gpus'][number];

/** One card's compute in use, [0, 1]; undefined without a usable figure. */
export function gpuBusyFraction(g: GpuTelemetry): number | undefined {
  return Number.isFinite(g.utilizationPercent) ? clamp01(g.utilizationPercent / 100) : undefined;
}

/** One card's VRAM in use, [0, 1]; undefined without usable figures. */
export function vramUsedFraction(g: GpuTelemetry): number | undefined {
  if (!(g.vramTotalBytes > 0 && g.vramTotalBytes < Infinity) || !Number.isFinite(g.vramUsedBytes)) return undefined;
  return clamp01(g.vramUsedBytes / g.vramTotalBytes);
}

/**
 * The load figure used by least_load, latency_based and dynamic:
 *
 *   occupancy = inFlight / slots         (slots = maxConcurrent, or cpuCores when unlimited)
 *   load      = w × cpuPercent/100 + (1 − w) × occupancy      with CPU telemetry
 *   load      = occupancy                                      without
 *
 * 0 is idle and 1 is full; occupancy is not capped, so a node with unlimited concurrency
 * and more calls than cores reads above 1. Telemetry arrives only with heartbeats, so
 * CPU alone would send a whole burst to the node that looked idle at the last heartbeat;
 * the gateway's own in-flight count moves with every dispatch and damps that herding.
 */
export function candidateLoad(c: Candidate, cpuWeight: number = DEFAULT_CPU_WEIGHT): number {
  const occ = occupancy(c);
  const cpu = cpuFraction(c.telemetry);
  if (cpu === undefined) return occ;
  return cpuWeight * cpu + (1 - cpuWeight) * occ;
}

/** The cost rate that applies: the function's declaration, else the node's; 0 when neither is usable. */
export function costPerHourOf(c: Candidate): number {
  if (c.costPerHour > 0 && c.costPerHour < Infinity) return c.costPerHour;
  return nonNegative(c.capabilities.costPerHour);
}

/** The declared tier, or the default when none (or an unusable one) is declared. */
export function performanceTierOf(c: Candidate): number {
  const tier = c.performanceTier;
  return tier > 0 && tier < Infinity ? Math.min(tier, MAX_PERFORMANCE_TIER) : DEFAULT_PERFORMANCE_TIER;
}

/** performanceTier × slow-start factor: a joining node ramps up to its full share. */
export function effectiveWeight(c: Candidate): number {
  // The factor is in (0, 1] by contract; anything else is treated as "no slow-start".
  const slowStart = c.weight > 0 && c.weight < 1 ? c.weight : 1;
  return performanceTierOf(c) * slowStart;
}

/** Stream round-trip time (ms), undefined before the first pong or when unusable. */
export function rttOf(c: Candidate): number | undefined {
  const rtt = c.rttMs;
  return rtt !== undefined && rtt >= 0 && rtt < Infinity ? rtt : undefined;
}

/** EWMA of gateway-seen latency (ms); 0 = no usable history. */
export function ewmaLatencyOf(c: Candidate): number {
  return nonNegative(c.history.ewmaLatencyMs);
}

/** EWMA of node-reported execution time (ms); 0 = no usable history. */
export function ewmaExecOf(c: Candidate): number {
  return nonNegative(c.history.ewmaExecMs);
}

/**
 * Fewest calls of this function in flight (inFlightOf: nginx `least_conn`), ties broken
 * at random so that idle nodes share a burst instead of the first taking it.
 */
export function fewestInFlight(candidates: readonly Candidate[], random: () => number): Candidate | undefined {
  let picked: Candidate | undefined;
  let fewest = Infinity;
  let ties = 0;
  for (const c of candidates) {
    const n = inFlightOf(c);
    if (picked === undefined || n < fewest) {
      picked = c;
      fewest = n;
      ties = 1;
    } else if (n === fewest && replacesTie(++ties, random)) {
      picked = c;
    }
  }
  return picked;
}
