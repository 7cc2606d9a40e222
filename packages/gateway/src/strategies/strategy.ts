// The contract every load-balancing strategy implements. A strategy sees only the
// candidates the router already filtered (healthy, not draining, not ejected, meeting
// the function's hard requirements, not full) and picks one, or none.
//
// For a function with many providers the router does not build that list on every call
// (it would cost O(n) per call): it offers a CandidatePool instead, and a strategy either
// picks from it itself (`selectFrom`) or is handed a small random sample of eligible
// candidates to `select` from (see routing/router.ts).
//
// The figures below come from nodes written in any language and from clocks and counters
// that can misbehave, so a strategy must treat a non-finite or out-of-range figure as
// unknown and still return one of the candidates (or none); it never throws because of one.
import type { CapabilitiesDocument, TelemetryDocument } from '@easyremote/protocol';
import type { OptionSchema, OptionsOf, StrategyOptions } from './option-schema.js';

/** Live figures a node last reported (absent until the first heartbeat with telemetry). */
export type TelemetrySnapshot = TelemetryDocument;

/** What the node declared about itself at registration. */
export type NodeCapabilities = CapabilitiesDocument;

/** Per (node, function) history kept by the gateway from finished calls. */
export interface ProviderHistory {
  /** Calls finished (success or failure). */
  completed: number;
  failures: number;
  /** EWMA of total latency seen at the gateway (ms); 0 when there is no history. */
  ewmaLatencyMs: number;
  /** EWMA of execution time reported by the node (ms); 0 when there is no history. */
  ewmaExecMs: number;
}

/** One provider of the function being routed. */
export interface Candidate {
  readonly nodeId: string;
  readonly capabilities: NodeCapabilities;
  readonly telemetry: TelemetrySnapshot | undefined;
  /** Round-trip time of the node's stream (ping/pong), ms; undefined before the first pong. */
  readonly rttMs: number | undefined;
  /** Calls of this function on this node in flight at the gateway. */
  readonly inFlight: number;
  /**
   * Calls of this function the node reported beyond this gateway's own: those its other
   * gateways sent it, as of its last heartbeat (absent or 0 with one gateway). Strategies
   * count `inFlight + inFlightElsewhere` (candidate-math's inFlightOf).
   */
  readonly inFlightElsewhere?: number;
  /** Calls of any function on this node in flight at the gateway. */
  readonly nodeInFlight: number;
  /** The node's declared concurrency limit for this function (0 = unlimited). */
  readonly maxConcurrent: number;
  /** Calls queued on the node for this function, as last reported. */
  readonly queued: number;
  /** From the function's declaration on this node. */
  readonly costPerHour: number;
  readonly performanceTier: number;
  /** Slow-start factor in (0, 1]: 1 once the node has been in rotation a while. */
  readonly weight: number;
  readonly history: ProviderHistory;
}

/** Per-call inputs a strategy may use. Time and randomness are injected. */
export interface SelectContext {
  readonly functionName: string;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** Milliseconds, monotonic (process-relative): for rates, ages and durations. */
  readonly now: () => number;
  /** Wall-clock Unix time in milliseconds: for anything tied to the time of day. */
  readonly epochMs: () => number;
  readonly affinityKey?: string;
  /** Relative size of the work (1 = typical); smart_adaptive uses it. */
  readonly complexity: number;
  /** Size of the MessagePack arguments, bytes. */
  readonly requestBytes: number;
  readonly preferences: Preferences;
}

export interface Preferences {
  /** Prefer candidates whose `location` label equals this. */
  preferLocation?: string;
  /** Drop candidates whose expected latency exceeds this (ms). */
  maxLatencyMs?: number;
  /** Budget for one call, in the cost unit of costPerHour (per-call cost). */
  maxCost?: number;
}

/** What the router reports back after a call the strategy routed finishes. */
export interface Outcome {
  readonly nodeId: string;
  readonly ok: boolean;
  /** Time at the gateway from dispatch to the last reply (ms). */
  readonly latencyMs: number;
  /** Execution time reported by the node (ms). */
  readonly execMs: number;
  /** The candidate as it was when selected (features at decision time). */
  readonly candidate: Candidate;
  readonly context: SelectContext;
}

/**
 * The providers of a function with many of them, as the router offers them to a strategy
 * for one call, without filtering them all first. Members are the providers meeting the
 * requirements the function declares on what nodes declare (not on live figures), in
 * registration order; which of them may take this call is asked one at a time. A pool is
 * valid only during the call it is passed to.
 */
export interface CandidatePool {
  /** How many members: `at(0)` to `at(size - 1)`. */
  readonly size: number;
  /** Changes whenever the members change (a node joins or leaves), and only then. */
  readonly version: number;
  /** Calls in flight over every member, as inFlightOf counts them (own plus reported elsewhere). */
  readonly inFlight: number;
  at(i: number): Candidate;
  /**
   * Whether a member may take this call: routable, with room, not tried by this call,
   * meeting its live requirements, and (while the router's soft filter is on, see
   * Strategy.selectFrom) not loaded past the availability threshold.
   */
  eligible(c: Candidate): boolean;
  /**
   * Up to k distinct members that may take this call, found by probing members at random
   * (so each eligible member is equally likely). Loaded members are left out when the
   * probes found others with headroom. Empty only when the probes found no eligible
   * member. The array is reused by the next call of `sample`.
   */
  sample(k: number, random: () => number): readonly Candidate[];
}

export interface Strategy {
  readonly name: string;
  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined;
  /**
   * Optional: picks from a large pool with amortised O(1) or O(log n) work per call,
   * returning an eligible member or none. The router calls it at most twice per call:
   * first with loaded members counted ineligible, then, if that found none, with them
   * counted in (loaded nodes are avoided while others have headroom). None from both makes
   * the router filter every provider and fall back to `select`, so none is always safe.
   * Without it the router hands `select` a random sample of eligible candidates.
   */
  selectFrom?(pool: CandidatePool, context: SelectContext): Candidate | undefined;
  /** Optional learning hook: called once per finished call routed by this strategy. */
  observe?(outcome: Outcome): void;
  /** Optional state for operators (e.g. dynamic's current choice and why). */
  describe?(): Record<string, unknown>;
}

export type { StrategyOptions };

/** Strategies keep per-function state, so the router builds one instance per function. */
export type StrategyFactory = (options: StrategyOptions) => Strategy;

/**
 * A strategy as the registry knows it: its name, the options it reads and how to build an
 * instance from options already checked against that schema (unknown keys removed, every
 * key under its canonical camelCase name). Without a schema the factory gets the config
 * object as it came, and must check it itself.
 */
export interface StrategyDefinition<S extends OptionSchema = OptionSchema> {
  readonly name: string;
  readonly schema?: S;
  create(options: OptionsOf<S>): Strategy;
}

/** What a strategy file's setup() is handed: the registry's way in. */
export type RegisterStrategy = <S extends OptionSchema>(definition: StrategyDefinition<S>) => void;
