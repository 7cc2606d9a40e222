// Fake candidates, contexts and outcomes for strategy tests: no gateway, no network.
import { randomIndex } from '../../src/strategies/candidate-math.js';
import type {
  Candidate,
  CandidatePool,
  NodeCapabilities,
  Outcome,
  SelectContext,
  Strategy,
  TelemetrySnapshot,
} from '../../src/strategies/strategy.js';

export const GB = 1e9;
export const GiB = 1024 ** 3;

/** Tiny seeded PRNG (mulberry32): uniform in [0, 1), same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface CandidateSpec extends Partial<Omit<Candidate, 'capabilities' | 'telemetry' | 'history'>> {
  nodeId: string;
  capabilities?: Partial<NodeCapabilities>;
  /** null = no telemetry yet. */
  telemetry?: Partial<TelemetrySnapshot> | null;
  history?: Partial<Candidate['history']>;
  /** Shorthand for telemetry.cpuPercent. */
  cpu?: number;
  /** Shorthand for capabilities.labels.location. */
  location?: string;
}

export function candidate(spec: CandidateSpec): Candidate {
  const { nodeId, capabilities, telemetry, history, cpu, location, ...rest } = spec;
  const caps: NodeCapabilities = {
    cpuCores: 8,
    memoryTotalBytes: 32 * GB,
    gpus: [],
    costPerHour: 0,
    ...capabilities,
    labels: { ...(location === undefined ? {} : { location }), ...capabilities?.labels },
  };
  const tele: TelemetrySnapshot | undefined =
    telemetry === null
      ? undefined
      : {
          cpuPercent: cpu ?? 10,
          memoryUsedBytes: 8 * GB,
          memoryTotalBytes: caps.memoryTotalBytes,
          gpus: [],
          receivedAt: 0,
          ...telemetry,
        };
  return {
    nodeId,
    capabilities: caps,
    telemetry: tele,
    rttMs: 1,
    inFlight: 0,
    nodeInFlight: 0,
    maxConcurrent: 0,
    queued: 0,
    costPerHour: 0,
    performanceTier: 1,
    weight: 1,
    history: { completed: 0, failures: 0, ewmaLatencyMs: 0, ewmaExecMs: 0, ...history },
    ...rest,
  };
}

/** Candidates n0..n{count-1} with default figures. */
export function nodes(count: number, spec: Omit<CandidateSpec, 'nodeId'> = {}): Candidate[] {
  return Array.from({ length: count }, (_, i) => candidate({ ...spec, nodeId: `n${i}` }));
}

export interface FakeContext extends SelectContext {
  /** Moves the fake clock. */
  advance(ms: number): void;
}

/** Where the fake clocks start: 2023-11-14T22:13:20Z, for both the monotonic and the wall clock. */
export const CLOCK_START_MS = 1_700_000_000_000;

export function context(overrides: Partial<SelectContext> & { seed?: number } = {}): FakeContext {
  const { seed, ...rest } = overrides;
  let elapsed = 0;
  return {
    functionName: 'f',
    random: mulberry32(seed ?? 42),
    now: () => CLOCK_START_MS + elapsed,
    epochMs: () => CLOCK_START_MS + elapsed,
    complexity: 1,
    requestBytes: 100,
    preferences: {},
    advance(ms: number) {
      elapsed += ms;
    },
    ...rest,
  };
}

export function outcome(c: Candidate, ctx: SelectContext, fields: Partial<Outcome> = {}): Outcome {
  return { nodeId: c.nodeId, ok: true, latencyMs: 10, execMs: 10, candidate: c, context: ctx, ...fields };
}

/** Runs `times` selections and counts the picks per node id. */
export function tally(strategy: Strategy, candidates: readonly Candidate[], ctx: SelectContext, times: number): Map<string, number> {
  const counts = new Map<string, number>(candidates.map((c) => [c.nodeId, 0]));
  for (let i = 0; i < times; i++) {
    const picked = strategy.select(candidates, ctx);
    if (picked !== undefined) counts.set(picked.nodeId, (counts.get(picked.nodeId) ?? 0) + 1);
  }
  return counts;
}

/** Replaces some fields of a candidate, as a later snapshot of the same node. */
export function withFields(c: Candidate, fields: Partial<Candidate>): Candidate {
  return { ...c, ...fields };
}

/**
 * A CandidatePool over a plain list, as the router's would be for these members: `eligible`
 * decides who may take the call, `sample` probes members in a random order. Written
 * independently of the router's pool, so strategy tests do not depend on it.
 */
export function listPool(members: readonly Candidate[], eligible: (c: Candidate) => boolean = () => true, version = 1): CandidatePool {
  let inFlight = 0;
  for (const c of members) inFlight += Number.isFinite(c.inFlight) && c.inFlight > 0 ? c.inFlight : 0;
  return {
    size: members.length,
    version,
    inFlight,
    at: (i) => members[i]!,
    eligible,
    sample(k, random) {
      const order = members.map((_, i) => i);
      const out: Candidate[] = [];
      for (let j = 0; j < order.length && out.length < k; j++) {
        const r = j + randomIndex(order.length - j, random);
        [order[j], order[r]] = [order[r]!, order[j]!];
        const c = members[order[j]!]!;
        if (eligible(c)) out.push(c);
      }
      return out;
    },
  };
}
