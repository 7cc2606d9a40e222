// Property-based tests over every built-in strategy: whatever the candidates, telemetry,
// history, context and outcomes (NaN, ±∞, negative or absurd figures, odd ids and labels,
// a random source at its edges), select returns one of the candidates or none and never
// throws (cost_aware's BudgetExceeded under a budget is the one deliberate refusal, and
// none is only returned for no candidates or under a latency limit),
// observe never throws, and a sane candidate set afterwards still gets a sane pick.
// For strategies that pick from a large pool themselves (selectFrom), the same with pools
// of random eligibility, nothing eligible included: the pick is an eligible member, and
// none only when no member is eligible.
// Fixed seeds keep runs reproducible; a failure prints the seed and the shrunk input.
import { BudgetExceeded } from '@easyremote/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OptionSpec } from '../../src/strategies/option-schema.js';
import {
  createStrategy,
  StrategyOptionError,
  strategyNames,
  strategySchema,
  validateStrategyOptions,
} from '../../src/strategies/registry.js';
import type { Candidate, NodeCapabilities, Outcome, SelectContext, Strategy, TelemetrySnapshot } from '../../src/strategies/strategy.js';
import { listPool, mulberry32 } from './fixtures.js';

const BUILT_IN = [
  'consistent_hash',
  'cost_aware',
  'dynamic',
  'latency_based',
  'least_connections',
  'least_load',
  'pick_first',
  'power_of_two',
  'random',
  'resource_aware',
  'round_robin',
  'smart_adaptive',
  'weighted_round_robin',
];
const BASE_SEED = 0x5eed;
const TOTALITY_RUNS = 200;
const POISONING_RUNS = 100;
const POOL_RUNS = 150;
const OPTION_RUNS = 400;

// ---------------------------------------------------------------- arbitraries

/** Any number a broken node, counter or clock could produce, and ordinary ones. */
const wild = fc.oneof(
  fc.double(),
  fc.integer({ min: -3, max: 40 }),
  fc.constantFrom(0, -0, -1, 1e308, -1e308, Number.MIN_VALUE, NaN, Infinity, -Infinity),
);
const nodeId = fc.constantFrom('a', 'b', 'c', 'd', '', '__proto__', 'constructor', 'toString');
const labels = fc.dictionary(fc.constantFrom('location', 'zone', ''), fc.constantFrom('eu', 'us', ''), { maxKeys: 3 });

const gpuTelemetry = fc.record({ index: wild, utilizationPercent: wild, vramUsedBytes: wild, vramTotalBytes: wild });
const telemetry: fc.Arbitrary<TelemetrySnapshot | undefined> = fc.option(
  fc.record({ cpuPercent: wild, memoryUsedBytes: wild, memoryTotalBytes: wild, gpus: fc.array(gpuTelemetry, { maxLength: 3 }), receivedAt: wild }),
  { nil: undefined },
);
const capabilities: fc.Arbitrary<NodeCapabilities> = fc.record({
  cpuCores: wild,
  memoryTotalBytes: wild,
  gpus: fc.array(fc.record({ index: wild, model: fc.constantFrom('RTX 4090', 'A100', ''), vramTotalBytes: wild }), { maxLength: 2 }),
  labels,
  costPerHour: wild,
});
const wildCandidate: fc.Arbitrary<Candidate> = fc.record({
  nodeId,
  capabilities,
  telemetry,
  rttMs: fc.option(wild, { nil: undefined }),
  inFlight: wild,
  nodeInFlight: wild,
  maxConcurrent: wild,
  queued: wild,
  costPerHour: wild,
  performanceTier: wild,
  weight: wild,
  history: fc.record({ completed: wild, failures: wild, ewmaLatencyMs: wild, ewmaExecMs: wild }),
});
const wildCandidates = fc.array(wildCandidate, { maxLength: 8 });

/** A named function, so counterexamples print something readable. */
function named<F extends (...args: never[]) => unknown>(name: string, f: F): F {
  return Object.assign(f, { toString: () => name });
}

/** Random sources at the edges of [0, 1) and past them, and an ordinary seeded one. */
const randomSource = fc.oneof(
  fc.constantFrom(
    named('zero', () => 0),
    named('nearly one', () => 1 - Number.EPSILON / 2),
    named('one', () => 1),
    named('NaN', () => NaN),
    named('negative', () => -0.5),
  ),
  fc.integer().map((seed) => named(`mulberry32(${seed})`, mulberry32(seed))),
);
const clock = fc.oneof(
  wild.map((t) => named(`always ${t}`, () => t)),
  fc.integer({ min: 0, max: 2 ** 40 }).map((start) => {
    let t = start;
    return named(`ticking from ${start}`, () => (t += 1_000));
  }),
);

const wildContext: fc.Arbitrary<SelectContext> = fc.record({
  functionName: fc.constantFrom('f', ''),
  random: randomSource,
  now: clock,
  epochMs: clock,
  affinityKey: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
  complexity: wild,
  requestBytes: wild,
  preferences: fc.record(
    {
      preferLocation: fc.constantFrom('eu', 'us', ''),
      maxLatencyMs: wild,
      maxCost: wild,
    },
    { requiredKeys: [] },
  ),
});

type Op =
  | { kind: 'select'; candidates: Candidate[]; context: SelectContext }
  | { kind: 'observe'; ok: boolean; latencyMs: number; execMs: number; candidate: Candidate | undefined; nodeId: string | undefined; context: SelectContext };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('select' as const), candidates: wildCandidates, context: wildContext }),
  fc.record({
    kind: fc.constant('observe' as const),
    ok: fc.boolean(),
    latencyMs: wild,
    execMs: wild,
    // undefined: the outcome of the last pick, as the router would report it.
    candidate: fc.option(wildCandidate, { nil: undefined }),
    nodeId: fc.option(nodeId, { nil: undefined }),
    context: wildContext,
  }),
);

/** Valid values for one declared option (what validateStrategyOptions would accept). */
function validValue(spec: OptionSpec): fc.Arbitrary<unknown> {
  switch (spec.type) {
    case 'number':
      if (spec.integer === true) {
        // Small rings keep consistent_hash's rebuilds (one per changed node set) cheap.
        return fc.integer({ min: Math.ceil(spec.min ?? -1e6), max: Math.min(spec.max ?? 1e6, 64) });
      }
      return fc.double({ min: spec.min ?? -1e12, max: spec.max ?? 1e12, noNaN: true, noDefaultInfinity: true });
    case 'string':
      return spec.values === undefined ? fc.constantFrom('eu', 'us', '') : fc.constantFrom(...spec.values);
    case 'boolean':
      return fc.boolean();
    case 'object':
      return fc.constantFrom({}, { 'label.location': 'eu' }, { gpu_memory: '>=8GB' }, { cpuCores: '>=4', gpuModel: 'A100' });
  }
}

/** Options a strategy accepts: each declared key present or not, with a valid value. */
function validOptions(name: string, leaveOut: readonly string[] = []): fc.Arbitrary<Record<string, unknown>> {
  const schema = strategySchema(name) ?? {};
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, spec] of Object.entries(schema)) if (!leaveOut.includes(key)) fields[key] = validValue(spec);
  return fc.record(fields, { requiredKeys: [] });
}

// ---------------------------------------------------------------- helpers

/** A limit from the call (a NaN one counts as none) or from the function's options. */
function limitSet(key: 'maxCost' | 'maxLatencyMs', options: Record<string, unknown>, context: SelectContext): boolean {
  const pref = context.preferences[key];
  return (typeof pref === 'number' && !Number.isNaN(pref)) || options[key] !== undefined;
}

/**
 * select, checking it returns one of the candidates, or none only where that is a correct
 * answer (no candidates, or a latency limit that may exclude them all); the one refusal
 * allowed is a budget's.
 */
function checkedSelect(name: string, s: Strategy, options: Record<string, unknown>, candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
  let picked: Candidate | undefined;
  try {
    picked = s.select(candidates, context);
  } catch (err) {
    const allowed = err instanceof BudgetExceeded && (name === 'cost_aware' || name === 'dynamic') && limitSet('maxCost', options, context);
    if (!allowed) throw err;
    return undefined;
  }
  if (picked !== undefined && !candidates.includes(picked)) throw new Error(`${name} returned a candidate it was not given: ${picked.nodeId}`);
  const mayDecline = (name === 'latency_based' || name === 'dynamic') && limitSet('maxLatencyMs', options, context);
  if (picked === undefined && candidates.length > 0 && !mayDecline) throw new Error(`${name} returned none of ${candidates.length} candidates`);
  return picked;
}

function outcomeOf(o: Extract<Op, { kind: 'observe' }>, last: Candidate | undefined, fallback: Candidate): Outcome {
  const candidate = o.candidate ?? last ?? fallback;
  return { nodeId: o.nodeId ?? candidate.nodeId, ok: o.ok, latencyMs: o.latencyMs, execMs: o.execMs, candidate, context: o.context };
}

/** Runs the operations; returns nothing, throws on the first broken rule. */
function play(name: string, s: Strategy, options: Record<string, unknown>, ops: readonly Op[], fallback: Candidate): void {
  let last: Candidate | undefined;
  for (const o of ops) {
    if (o.kind === 'select') last = checkedSelect(name, s, options, o.candidates, o.context) ?? last;
    else s.observe?.(outcomeOf(o, last, fallback));
  }
  JSON.stringify(s.describe?.() ?? {});
}

const GB = 1e9;

function saneCandidate(id: string, i: number): Candidate {
  return {
    nodeId: id,
    capabilities: { cpuCores: 8, memoryTotalBytes: 32 * GB, gpus: [], labels: { location: 'eu' }, costPerHour: 1 },
    telemetry: { cpuPercent: 20 + 10 * i, memoryUsedBytes: 8 * GB, memoryTotalBytes: 32 * GB, gpus: [], receivedAt: 0 },
    rttMs: 1,
    inFlight: i % 2,
    nodeInFlight: i % 2,
    maxConcurrent: 4,
    queued: 0,
    costPerHour: 1 + i,
    performanceTier: 1,
    weight: 1,
    history: { completed: 10, failures: 0, ewmaLatencyMs: 20 + i, ewmaExecMs: 15 + i },
  };
}

function saneContext(seed: number, affinityKey: string | undefined): SelectContext {
  let t = 0;
  return {
    functionName: 'f',
    random: mulberry32(seed),
    now: () => (t += 10),
    epochMs: () => 1_700_000_000_000 + t,
    ...(affinityKey === undefined ? {} : { affinityKey }),
    complexity: 1,
    requestBytes: 100,
    preferences: {},
  };
}

// ---------------------------------------------------------------- properties

describe('every strategy is total', () => {
  it('lists the strategies it covers', () => {
    expect(strategyNames()).toEqual(expect.arrayContaining(BUILT_IN));
  });

  BUILT_IN.forEach((name, index) => {
    it(`${name}: select returns a given candidate or none, and select/observe never throw`, () => {
      const fallback = saneCandidate('fallback', 0);
      fc.assert(
        fc.property(validOptions(name), fc.array(op, { minLength: 1, maxLength: 12 }), (options, ops) => {
          play(name, createStrategy(name, options), options, ops, fallback);
        }),
        { seed: BASE_SEED + index, numRuns: TOTALITY_RUNS },
      );
    });
  });
});

describe('bad values do not poison a strategy', () => {
  BUILT_IN.forEach((name, index) => {
    it(`${name}: after any history, a sane candidate set still gets a sane pick`, () => {
      const fallback = saneCandidate('fallback', 0);
      const saneIds = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 's1', 's2', 's3'), { minLength: 1, maxLength: 4 });
      fc.assert(
        fc.property(
          // Without limits: with maxLatencyMs or maxCost, none (or a refusal) is a correct answer.
          validOptions(name, ['maxLatencyMs', 'maxCost']),
          fc.array(op, { minLength: 1, maxLength: 12 }),
          saneIds,
          fc.integer(),
          fc.option(fc.constantFrom('user-1', 'user-2'), { nil: undefined }),
          (options, ops, ids, seed, affinityKey) => {
            const s = createStrategy(name, options);
            play(name, s, options, ops, fallback);
            const sane = ids.map(saneCandidate);
            const ctx = saneContext(seed, affinityKey);
            for (let i = 0; i < 5; i++) {
              const picked = s.select(sane, ctx);
              expect(picked === undefined ? undefined : sane.includes(picked)).toBe(true);
              s.observe?.({ nodeId: picked!.nodeId, ok: true, latencyMs: 12, execMs: 10, candidate: picked!, context: ctx });
            }
            const predict = (s as Partial<{ predictExecMs(c: Candidate, ctx: SelectContext): number }>).predictExecMs;
            if (predict !== undefined) for (const c of sane) expect(Number.isFinite(predict.call(s, c, ctx))).toBe(true);
          },
        ),
        { seed: BASE_SEED + 100 + index, numRuns: POISONING_RUNS },
      );
    });
  });
});

type PoolOp = Op | { kind: 'selectFrom'; members: Candidate[]; eligible: boolean[]; version: number; context: SelectContext };

/** A pool of up to 40 members, each eligible or not at random; all and none are common cases. */
const poolOp: fc.Arbitrary<PoolOp> = fc.oneof(
  op,
  fc.array(wildCandidate, { maxLength: 40 }).chain((members) =>
    fc.record({
      kind: fc.constant('selectFrom' as const),
      members: fc.constant(members),
      eligible: fc.oneof(
        fc.constant(members.map(() => false)),
        fc.constant(members.map(() => true)),
        fc.array(fc.boolean(), { minLength: members.length, maxLength: members.length }),
      ),
      // Few versions, so a strategy also meets a pool whose members changed under the same version.
      version: fc.integer({ min: 0, max: 2 }),
      context: wildContext,
    }),
  ),
);

/** selectFrom, checking it returns an eligible member, and none only when no member is eligible. */
function checkedSelectFrom(name: string, s: Strategy, o: Extract<PoolOp, { kind: 'selectFrom' }>): Candidate | undefined {
  const eligible = new Set(o.members.filter((_, i) => o.eligible[i]));
  const picked = s.selectFrom!(listPool(o.members, (c) => eligible.has(c), o.version), o.context);
  if (picked !== undefined && !o.members.includes(picked)) throw new Error(`${name}.selectFrom returned a candidate not in the pool: ${picked.nodeId}`);
  if (picked !== undefined && !eligible.has(picked)) throw new Error(`${name}.selectFrom returned an ineligible member: ${picked.nodeId}`);
  // This pool's samples find every eligible member, so a strategy always has one to pick.
  if (picked === undefined && eligible.size > 0) throw new Error(`${name}.selectFrom returned none of ${eligible.size} eligible members`);
  return picked;
}

describe('selectFrom is total', () => {
  const withPools = BUILT_IN.filter((name) => createStrategy(name).selectFrom !== undefined);

  it('covers the strategies that pick from a pool themselves', () => {
    expect(withPools).toEqual(['consistent_hash', 'pick_first', 'power_of_two', 'random', 'round_robin', 'weighted_round_robin']);
  });

  withPools.forEach((name, index) => {
    it(`${name}: selectFrom returns an eligible member or none, interleaved with select and observe`, () => {
      const fallback = saneCandidate('fallback', 0);
      fc.assert(
        fc.property(validOptions(name), fc.array(poolOp, { minLength: 1, maxLength: 12 }), (options, ops) => {
          const s = createStrategy(name, options);
          let last: Candidate | undefined;
          for (const o of ops) {
            if (o.kind === 'selectFrom') last = checkedSelectFrom(name, s, o) ?? last;
            else if (o.kind === 'select') last = checkedSelect(name, s, options, o.candidates, o.context) ?? last;
            else s.observe?.(outcomeOf(o, last, fallback));
          }
          JSON.stringify(s.describe?.() ?? {});
        }),
        { seed: BASE_SEED + 300 + index, numRuns: POOL_RUNS },
      );
    });
  });
});

describe('options that pass validation are accepted by every strategy', () => {
  const schemas = BUILT_IN.map((name) => strategySchema(name) ?? {});
  const snake = (key: string) => key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
  /** Every spelling a config may use for every declared key, with valid or junk values. */
  const entries: Array<fc.Arbitrary<[string, unknown]>> = [];
  for (const schema of schemas) {
    for (const [key, spec] of Object.entries(schema)) {
      const spellings = [key, snake(key), ...(spec.aliases ?? []).flatMap((a) => [a, snake(a)])];
      const junk = fc.oneof(wild, fc.string({ maxLength: 150 }), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }));
      entries.push(fc.tuple(fc.constantFrom(...spellings), fc.oneof({ weight: 4, arbitrary: validValue(spec) }, { weight: 1, arbitrary: junk })));
    }
  }
  // Keys that belong to the router, or to nobody, are ignored whatever their value.
  entries.push(fc.tuple(fc.constantFrom('strategy', 'fallback_strategy', 'healthCheck', 'preferences', 'unknownKey'), fc.oneof(wild, fc.string(), fc.constant({ enabled: 'maybe' }))));
  const optionsObject = fc.array(fc.oneof(...entries), { maxLength: 4 }).map((pairs) => Object.fromEntries(pairs) as Record<string, unknown>);

  it('validateStrategyOptions refuses with a StrategyOptionError naming the key as written, or createStrategy never throws', () => {
    let accepted = 0;
    fc.assert(
      fc.property(optionsObject, (options) => {
        try {
          validateStrategyOptions(options);
        } catch (err) {
          expect(err).toBeInstanceOf(StrategyOptionError);
          const e = err as StrategyOptionError;
          expect(BUILT_IN).toContain(e.strategy);
          expect(Object.keys(options)).toContain(e.option);
          expect(e.message.startsWith(`${e.strategy}: option ${e.option} must be `)).toBe(true);
          expect(e.message.length).toBeLessThan(400);
          return;
        }
        accepted += 1;
        for (const name of BUILT_IN) createStrategy(name, options);
      }),
      { seed: BASE_SEED + 200, numRuns: OPTION_RUNS },
    );
    // The generator must exercise both branches, or the property says little.
    expect(accepted).toBeGreaterThan(OPTION_RUNS / 10);
    expect(accepted).toBeLessThan(OPTION_RUNS);
  });
});
