// Passive outlier detection: the gateway watches the outcome of real calls and takes a
// (node, function) pair out of rotation when it keeps failing, instead of probing nodes
// with synthetic traffic. Ejection is per function, because a node whose `train_model`
// runs out of VRAM may still serve `resize_image` perfectly well.
//
// What counts as a failure is the gateway's decision (calls/dispatcher.ts,
// NOT_NODE_FAULT). It records as failures the outcomes that can be about the node:
//   NODE_LOST (stream broke or lease expired mid-call), DEADLINE_EXCEEDED when the node
//   held the call past its deadline, INTERNAL, and REMOTE_ERROR: a handler that throws on
//   one node and not on the others (out of VRAM, a missing driver) is exactly the node
//   "whose function keeps failing". A handler that rejects bad input should throw
//   InvalidArgument, which does not count; the max ejected share bounds the damage a
//   caller whose arguments make every node throw can do.
// It does NOT record: INVALID_ARGUMENT, PAYLOAD_TOO_LARGE, client cancellations, and
//   node-side refusals before the handler ran (OVERLOADED, FUNCTION_NOT_FOUND), which
//   are capacity or timing, not health. A half-open probe that ends that way is handed
//   back with releaseProbe().
//
// Pair lifecycle:
//   closed ──(failures)──▶ open ──(ejection time passes)──▶ half_open
//   half_open ──(probe ok)──▶ closed        half_open ──(probe fails)──▶ open, longer
// The detector is driven by record() and the injected clock; it owns no timers, so
// open → half_open happens lazily when the state is next read.

import { EventEmitter } from 'node:events';

export const DEFAULT_CONSECUTIVE_FAILURES = 5;
export const DEFAULT_FAILURE_RATE_THRESHOLD = 0.5;
export const DEFAULT_WINDOW_MS = 10_000;
export const DEFAULT_MIN_REQUEST_VOLUME = 10;
export const DEFAULT_BASE_EJECTION_MS = 5_000;
export const DEFAULT_MAX_EJECTION_MS = 60_000;
export const DEFAULT_MAX_EJECTED_SHARE = 0.5;
export const DEFAULT_EJECTION_DECAY_MS = 60_000;
export const DEFAULT_PROBE_TIMEOUT_MS = 60_000;

/** The failure-rate window is kept as this many buckets, so memory per pair is fixed. */
const WINDOW_BUCKETS = 10;
/** Guards share comparisons against float error (3 × 0.1 is not 0.3). */
const SHARE_EPSILON = 1e-9;

export type CircuitState = 'closed' | 'open' | 'half_open';
export type EjectionReason = 'consecutive_failures' | 'failure_rate' | 'probe_failed';

export interface OutlierDetectorOptions {
  /** Consecutive failures that eject a pair. */
  consecutiveFailures?: number;
  /** Failure share within the window (0..1) at or above which a pair is ejected. */
  failureRateThreshold?: number;
  /** Length of the sliding window for the failure rate (ms). */
  windowMs?: number;
  /** Calls the window must hold before the failure rate is judged. */
  minRequestVolume?: number;
  /** Ejection time for the first ejection (ms); the n-th lasts n times this. */
  baseEjectionMs?: number;
  /** Upper bound on one ejection (ms). */
  maxEjectionMs?: number;
  /** Largest share (0..1) of a function's providers that may be ejected at once. */
  maxEjectedShare?: number;
  /** Time spent closed that forgives one past ejection (ms); see `timesEjected`. */
  ejectionDecayMs?: number;
  /** A probe slot held this long without a verdict is freed for another probe (ms). */
  probeTimeoutMs?: number;
  /**
   * How many nodes currently provide the function (ejected ones included). Without it
   * the detector only knows the nodes it has seen results from.
   */
  providersOf?: (functionName: string) => number;
  /** Milliseconds; Date.now by default. */
  now?: () => number;
}

export interface EjectedEvent {
  nodeId: string;
  functionName: string;
  reason: EjectionReason;
  /** Clock time at which the pair turns half-open. */
  untilMs: number;
  /** Ejections counted for this pair, this one included (after decay). */
  times: number;
}

export interface ReadmittedEvent {
  nodeId: string;
  functionName: string;
}

export interface OutlierDetectorEvents {
  ejected: [EjectedEvent];
  readmitted: [ReadmittedEvent];
}

export interface PairSnapshot {
  nodeId: string;
  functionName: string;
  state: CircuitState;
  consecutiveFailures: number;
  windowRequests: number;
  windowFailures: number;
  timesEjected: number;
  /** Clock time the current ejection ends; undefined when closed. */
  ejectedUntilMs: number | undefined;
  probeInFlight: boolean;
  /** Ejections that the maxEjectedShare cap prevented. */
  suppressedEjections: number;
}

interface PairState {
  consecutiveFailures: number;
  window: SlidingCounts;
  /** Counted ejections; decays while the pair stays closed. */
  timesEjected: number;
  /** Clock time timesEjected was last brought up to date (decay reference point). */
  decayFrom: number;
  /** Defined while the pair is ejected (open or half-open). */
  ejectedUntil: number | undefined;
  /** Clock time the half-open probe slot was taken; undefined when free. */
  probeTakenAt: number | undefined;
  suppressedEjections: number;
}

export class OutlierDetector extends EventEmitter<OutlierDetectorEvents> {
  private readonly consecutiveFailures: number;
  private readonly failureRateThreshold: number;
  private readonly windowMs: number;
  private readonly minRequestVolume: number;
  private readonly baseEjectionMs: number;
  private readonly maxEjectionMs: number;
  private readonly maxEjectedShare: number;
  private readonly ejectionDecayMs: number;
  private readonly probeTimeoutMs: number;
  private readonly providersOf: ((functionName: string) => number) | undefined;
  private readonly now: () => number;

  /** nodeId → functionName → state, so forgetNode is one delete. */
  private readonly pairs = new Map<string, Map<string, PairState>>();
  /**
   * functionName → how many of its pairs are ejected (open or half-open); absent when none.
   * Routing asks isRoutable of many nodes per call, and most functions have no node out:
   * then one lookup answers for all of them.
   */
  private readonly ejectedPairs = new Map<string, number>();

  constructor(options: OutlierDetectorOptions = {}) {
    super();
    this.consecutiveFailures = atLeast(options.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES, 1, 'consecutiveFailures');
    this.failureRateThreshold = inRange(options.failureRateThreshold ?? DEFAULT_FAILURE_RATE_THRESHOLD, 'failureRateThreshold');
    this.windowMs = atLeast(options.windowMs ?? DEFAULT_WINDOW_MS, 1, 'windowMs');
    this.minRequestVolume = atLeast(options.minRequestVolume ?? DEFAULT_MIN_REQUEST_VOLUME, 1, 'minRequestVolume');
    this.baseEjectionMs = atLeast(options.baseEjectionMs ?? DEFAULT_BASE_EJECTION_MS, 0, 'baseEjectionMs');
    this.maxEjectionMs = atLeast(options.maxEjectionMs ?? DEFAULT_MAX_EJECTION_MS, this.baseEjectionMs, 'maxEjectionMs');
    this.maxEjectedShare = inRange(options.maxEjectedShare ?? DEFAULT_MAX_EJECTED_SHARE, 'maxEjectedShare');
    this.ejectionDecayMs = atLeast(options.ejectionDecayMs ?? DEFAULT_EJECTION_DECAY_MS, 1, 'ejectionDecayMs');
    this.probeTimeoutMs = atLeast(options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, 1, 'probeTimeoutMs');
    this.providersOf = options.providersOf;
    this.now = options.now ?? Date.now;
  }

  /**
   * Records the outcome of one call. `ok: false` only for failures that implicate the
   * node (see the top of this file).
   *
   * While half-open, the first outcome recorded for the pair is taken as the probe's
   * verdict. Outcomes recorded while open (calls dispatched before the ejection that
   * finish late) are ignored: the pair is already out, and only a probe readmits it.
   */
  record(nodeId: string, functionName: string, ok: boolean): void {
    const now = this.now();
    const pair = this.pairOrCreate(nodeId, functionName, now);
    const state = this.stateOf(pair, now);

    if (state === 'open') return;

    if (state === 'half_open') {
      if (ok) this.readmit(nodeId, functionName, pair, now);
      else this.eject(nodeId, functionName, pair, 'probe_failed', now);
      return;
    }

    pair.window.add(now, ok);
    if (ok) {
      pair.consecutiveFailures = 0;
      return;
    }
    pair.consecutiveFailures += 1;

    let reason: EjectionReason | undefined;
    if (pair.consecutiveFailures >= this.consecutiveFailures) {
      reason = 'consecutive_failures';
    } else {
      const { requests, failures } = pair.window.totals(now);
      if (requests >= this.minRequestVolume && failures / requests >= this.failureRateThreshold) {
        reason = 'failure_rate';
      }
    }
    if (reason === undefined) return;

    if (!this.mayEject(functionName, now)) {
      // Counters are kept, so the next failure tries again once the cap has room.
      pair.suppressedEjections += 1;
      return;
    }
    this.eject(nodeId, functionName, pair, reason, now);
  }

  state(nodeId: string, functionName: string): CircuitState {
    const pair = this.pairs.get(nodeId)?.get(functionName);
    return pair === undefined ? 'closed' : this.stateOf(pair, this.now());
  }

  /** Closed, or half-open with the probe slot free. The router filters candidates with it. */
  isRoutable(nodeId: string, functionName: string): boolean {
    if (!this.ejectedPairs.has(functionName)) return true;
    const pair = this.pairs.get(nodeId)?.get(functionName);
    if (pair === undefined || pair.ejectedUntil === undefined) return true;
    const now = this.now();
    const state = this.stateOf(pair, now);
    return state === 'closed' || (state === 'half_open' && this.probeFree(pair, now));
  }

  /**
   * Call when a call is actually sent to the node. Returns whether it may go: always for
   * a closed pair; for a half-open pair only if it takes the single probe slot (the
   * caller that gets `true` owns the probe; everyone after gets `false` until the probe's
   * verdict is recorded, releaseProbe() is called, or probeTimeoutMs passes).
   * Routing is synchronous, so isRoutable() then onDispatch() cannot be raced; a `false`
   * here means pick another candidate.
   */
  onDispatch(nodeId: string, functionName: string): boolean {
    const pair = this.pairs.get(nodeId)?.get(functionName);
    if (pair === undefined) return true;
    const now = this.now();
    const state = this.stateOf(pair, now);
    if (state === 'closed') return true;
    if (state === 'open' || !this.probeFree(pair, now)) return false;
    pair.probeTakenAt = now;
    return true;
  }

  /** Alias of onDispatch for callers that think in circuit-breaker terms. */
  tryAcquireProbe(nodeId: string, functionName: string): boolean {
    return this.onDispatch(nodeId, functionName);
  }

  /**
   * Frees the probe slot without a verdict: for a probe that ended in a way that says
   * nothing about the node (cancelled by the client, REMOTE_ERROR not recorded as ok).
   */
  releaseProbe(nodeId: string, functionName: string): void {
    const pair = this.pairs.get(nodeId)?.get(functionName);
    if (pair !== undefined) pair.probeTakenAt = undefined;
  }

  /**
   * Drops everything known about a node (it left or its lease expired). A node that
   * comes back under the same id starts clean: its new process may well be healthy.
   */
  forgetNode(nodeId: string): void {
    const byFunction = this.pairs.get(nodeId);
    if (byFunction === undefined) return;
    for (const [functionName, pair] of byFunction) if (pair.ejectedUntil !== undefined) this.countEjected(functionName, -1);
    this.pairs.delete(nodeId);
  }

  /** Every tracked pair, for operators (dashboard, status API). */
  snapshot(): PairSnapshot[] {
    const now = this.now();
    const out: PairSnapshot[] = [];
    for (const [nodeId, byFunction] of this.pairs) {
      for (const [functionName, pair] of byFunction) {
        const state = this.stateOf(pair, now);
        const { requests, failures } = pair.window.totals(now);
        out.push({
          nodeId,
          functionName,
          state,
          consecutiveFailures: pair.consecutiveFailures,
          windowRequests: requests,
          windowFailures: failures,
          timesEjected: state === 'closed' ? this.decayedTimes(pair, now) : pair.timesEjected,
          ejectedUntilMs: pair.ejectedUntil,
          probeInFlight: state === 'half_open' && !this.probeFree(pair, now),
          suppressedEjections: pair.suppressedEjections,
        });
      }
    }
    return out;
  }

  private stateOf(pair: PairState, now: number): CircuitState {
    if (pair.ejectedUntil === undefined) return 'closed';
    return now < pair.ejectedUntil ? 'open' : 'half_open';
  }

  private probeFree(pair: PairState, now: number): boolean {
    return pair.probeTakenAt === undefined || now - pair.probeTakenAt >= this.probeTimeoutMs;
  }

  /**
   * The cap counts open and half-open pairs of the function: a half-open pair still
   * carries no normal traffic. With the default share of 0.5, a function's sole provider
   * is never ejected, since an empty pool turns every call into an immediate
   * UNAVAILABLE where a flaky node still answers some; set 1 to allow it.
   */
  private mayEject(functionName: string, now: number): boolean {
    let known = 0;
    let ejected = 0;
    for (const byFunction of this.pairs.values()) {
      const pair = byFunction.get(functionName);
      if (pair === undefined) continue;
      known += 1;
      if (this.stateOf(pair, now) !== 'closed') ejected += 1;
    }
    const providers = Math.max(this.providersOf?.(functionName) ?? known, known);
    return ejected + 1 <= providers * this.maxEjectedShare + SHARE_EPSILON;
  }

  private eject(nodeId: string, functionName: string, pair: PairState, reason: EjectionReason, now: number): void {
    // Re-ejection from half-open continues the streak; decay applies only to time closed.
    const times = (reason === 'probe_failed' ? pair.timesEjected : this.decayedTimes(pair, now)) + 1;
    const duration = Math.min(this.baseEjectionMs * times, this.maxEjectionMs);
    const untilMs = now + duration;
    if (pair.ejectedUntil === undefined) this.countEjected(functionName, 1);
    pair.timesEjected = times;
    pair.ejectedUntil = untilMs;
    pair.probeTakenAt = undefined;
    pair.consecutiveFailures = 0;
    pair.window.clear();
    this.emit('ejected', { nodeId, functionName, reason, untilMs, times });
  }

  private readmit(nodeId: string, functionName: string, pair: PairState, now: number): void {
    if (pair.ejectedUntil !== undefined) this.countEjected(functionName, -1);
    pair.ejectedUntil = undefined;
    pair.probeTakenAt = undefined;
    pair.consecutiveFailures = 0;
    pair.window.clear();
    pair.decayFrom = now;
    this.emit('readmitted', { nodeId, functionName });
  }

  private countEjected(functionName: string, delta: number): void {
    const n = (this.ejectedPairs.get(functionName) ?? 0) + delta;
    if (n > 0) this.ejectedPairs.set(functionName, n);
    else this.ejectedPairs.delete(functionName);
  }

  /**
   * timesEjected drops by one for every full ejectionDecayMs the pair has spent closed
   * since it was last readmitted (or last decayed), so a node that failed once an hour
   * ago starts again from the base ejection time, while one that flaps keeps climbing.
   */
  private decayedTimes(pair: PairState, now: number): number {
    if (pair.timesEjected === 0) return 0;
    const periods = Math.floor(Math.max(0, now - pair.decayFrom) / this.ejectionDecayMs);
    if (periods > 0) {
      pair.timesEjected = Math.max(0, pair.timesEjected - periods);
      pair.decayFrom += periods * this.ejectionDecayMs;
    }
    return pair.timesEjected;
  }

  private pairOrCreate(nodeId: string, functionName: string, now: number): PairState {
    let byFunction = this.pairs.get(nodeId);
    if (byFunction === undefined) {
      byFunction = new Map();
      this.pairs.set(nodeId, byFunction);
    }
    let pair = byFunction.get(functionName);
    if (pair === undefined) {
      pair = {
        consecutiveFailures: 0,
        window: new SlidingCounts(this.windowMs),
        timesEjected: 0,
        decayFrom: now,
        ejectedUntil: undefined,
        probeTakenAt: undefined,
        suppressedEjections: 0,
      };
      byFunction.set(functionName, pair);
    }
    return pair;
  }
}

/**
 * Request and failure counts over the last windowMs, in WINDOW_BUCKETS fixed buckets:
 * constant memory however busy the pair is, at the price of the window's far edge
 * moving in steps of windowMs / WINDOW_BUCKETS.
 */
class SlidingCounts {
  private readonly bucketMs: number;
  private readonly epochs = new Array<number>(WINDOW_BUCKETS).fill(Number.NaN);
  private readonly requests = new Array<number>(WINDOW_BUCKETS).fill(0);
  private readonly failures = new Array<number>(WINDOW_BUCKETS).fill(0);

  constructor(windowMs: number) {
    this.bucketMs = windowMs / WINDOW_BUCKETS;
  }

  add(now: number, ok: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const slot = mod(epoch, WINDOW_BUCKETS);
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.requests[slot] = 0;
      this.failures[slot] = 0;
    }
    this.requests[slot] += 1;
    if (!ok) this.failures[slot] += 1;
  }

  totals(now: number): { requests: number; failures: number } {
    const current = Math.floor(now / this.bucketMs);
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < WINDOW_BUCKETS; i++) {
      const epoch = this.epochs[i];
      if (epoch > current - WINDOW_BUCKETS && epoch <= current) {
        requests += this.requests[i];
        failures += this.failures[i];
      }
    }
    return { requests, failures };
  }

  clear(): void {
    this.epochs.fill(Number.NaN);
    this.requests.fill(0);
    this.failures.fill(0);
  }
}

function mod(n: number, m: number): number {
  return ((n % m) + m) % m;
}

function atLeast(value: number, min: number, name: string): number {
  if (!(Number.isFinite(value) && value >= min)) {
    throw new RangeError(`${name} must be a number >= ${min}, got ${value}`);
  }
  return value;
}

function inRange(value: number, name: string): number {
  if (!(Number.isFinite(value) && value >= 0 && value <= 1)) {
    throw new RangeError(`${name} must be between 0 and 1, got ${value}`);
  }
  return value;
}
