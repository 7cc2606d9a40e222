// Routing a function with more providers than SMALL_POOL_MAX: the router offers strategies
// a pool instead of filtering every provider, and each strategy keeps its meaning. Fake
// clock and seeded random source (core-harness).
import { describe, expect, it } from 'vitest';
import type { CallOptions } from '@easyremote/protocol';
import { ProviderPool } from '../../src/routing/candidate-pool.js';
import { RETRY_AFTER_MS, SAMPLE_SIZE, SMALL_POOL_MAX, type RouteDecision } from '../../src/routing/router.js';
import { ConsistentHashStrategy } from '../../src/strategies/consistent-hash.js';
import { LeastConnectionsStrategy } from '../../src/strategies/least-connections.js';
import { registerStrategy } from '../../src/strategies/registry.js';
import type { Candidate, SelectContext } from '../../src/strategies/strategy.js';
import { Core, type CoreOptions, type NodeInput, type SpecInput } from '../support/core-harness.js';
import { mulberry32 } from '../strategies/fixtures.js';

/** Enough providers that the router takes the pool path. */
const SIZE = 48;

// What the sampled path hands a strategy's select, call by call.
const handed: Array<readonly Candidate[]> = [];
const leastConnections = new LeastConnectionsStrategy();
registerStrategy('test_recording_least_connections', () => ({
  name: 'test_recording_least_connections',
  select: (cs: readonly Candidate[], ctx: SelectContext) => {
    handed.push([...cs]);
    return leastConnections.select(cs, ctx);
  },
}));

interface Setup {
  options?: CoreOptions;
  fn?: Omit<SpecInput, 'name'>;
  count?: number;
  /** Per-node input by index. */
  input?: (i: number) => NodeInput;
}

/** A core with function `f` on nodes n0..n{count − 1}, registered in that order. */
function setup({ options, fn = {}, count = SIZE, input }: Setup) {
  const core = new Core(options);
  const nodes = Array.from({ length: count }, (_, i) => core.addNode(`n${i}`, [{ name: 'f', ...fn }], input?.(i) ?? {}));
  const entry = core.entry('f');
  const route = (opts: Partial<CallOptions> & { metadata?: Record<string, string> } = {}, tried?: Set<string>): RouteDecision => {
    const { metadata, ...options } = opts;
    const { call } = core.call('f', { start: false, options: Object.keys(options).length ? options : undefined, metadata });
    call.tried = tried;
    return core.router.route(call);
  };
  const pick = (opts: Parameters<typeof route>[0] = {}) => pickedNode(route(opts));
  return { core, nodes, entry, route, pick };
}

function pickedNode(d: RouteDecision): string {
  if (d.type !== 'picked') throw new Error(`expected a pick, got ${d.type}: ${d.error.message}`);
  return d.provider.nodeId;
}

function counts(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

describe('FunctionEntry: the members routing draws from', () => {
  it('lists providers in registration order, and changes its version only when they change', () => {
    const { core, nodes, entry } = setup({ count: 5 });
    expect(entry.routingMembers.map((p) => p.nodeId)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    const v = entry.membershipVersion;
    // Re-registering the same function on the same session changes nothing.
    core.registry.setFunctions(nodes[2]!.session, [{ ...entry.providers.get('n2')!.spec }]);
    expect(entry.membershipVersion).toBe(v);
    nodes[1]!.lose();
    expect(entry.routingMembers.map((p) => p.nodeId)).toEqual(['n0', 'n2', 'n3', 'n4']);
    expect(entry.membershipVersion).toBe(v + 1);
    core.addNode('n5', [{ name: 'f' }]);
    expect(entry.routingMembers.map((p) => p.nodeId)).toEqual(['n0', 'n2', 'n3', 'n4', 'n5']);
    expect(entry.membershipVersion).toBe(v + 2);
  });

  it("holds only providers meeting the function's declared requirements; live ones are left to each call", () => {
    const { entry } = setup({
      count: 6,
      fn: { requirements: { cpuCores: '>=8', availableMemory: '>=1GB' } },
      input: (i) => ({ capabilities: { cpuCores: i % 2 === 0 ? 16 : 4 } }),
    });
    expect(entry.routingMembers.map((p) => p.nodeId)).toEqual(['n0', 'n2', 'n4']);
    expect(entry.liveRequirements.map((r) => r.source)).toEqual(['availableMemory >=1GB']);
  });

  it('keeps the total of calls in flight as calls start and end and as providers leave', () => {
    const { core, nodes, entry } = setup({ count: 3, options: { defaultStrategy: 'round_robin' } });
    const sum = () => [...entry.providers.values()].reduce((total, p) => total + p.inFlight, 0);
    for (let i = 0; i < 6; i++) core.call('f');
    expect(entry.inFlight.total).toBe(6);
    const first = nodes[0]!;
    first.result(first.lastInvoke().attemptId, 'ok');
    expect(entry.inFlight.total).toBe(5);
    // n1 leaves with its calls: they fail over or fail; its count leaves the total.
    nodes[1]!.lose();
    expect(entry.inFlight.total).toBe(sum());
    // A provider that left while counting calls no longer moves the total when they end.
    const leaving = entry.providers.get('n2')!;
    leaving.inFlight += 2;
    expect(entry.inFlight.total).toBe(sum());
    entry.removeProvider('n2');
    expect(entry.inFlight.total).toBe(sum());
    leaving.inFlight -= 2;
    expect(entry.inFlight.total).toBe(sum());
  });
});

describe('ProviderPool', () => {
  it('counts as eligible only providers that are routable, have room, are untried and meet live requirements', () => {
    const { core, nodes, entry } = setup({
      count: 8,
      options: { leaseMs: 1_000, outlierDetection: { consecutiveFailures: 1, maxEjectedShare: 1 } },
      fn: { maxConcurrent: 1, requirements: { availableMemory: '>=4GB' } },
    });
    nodes[0]!.session.state = 'draining';
    core.clock.advance(1_001);
    for (const n of nodes) if (n.nodeId !== 'n1') n.heartbeat(); // n1's lease lapses
    core.detector.record('n2', 'f', false); // ejected
    entry.providers.get('n3')!.inFlight = 1; // full
    nodes[4]!.session.telemetry = { cpuPercent: 10, memoryUsedBytes: 30e9, memoryTotalBytes: 32e9, gpus: [], receivedAt: 0 }; // 2 GB free
    nodes[5]!.setCpu(95); // loaded
    const pool = new ProviderPool(entry, core.health).begin(new Set(['n6']), core.clock.now());
    const eligible = () => entry.routingMembers.filter((p) => pool.eligible(p)).map((p) => p.nodeId);
    expect(eligible()).toEqual(['n7']);
    pool.relax();
    expect(eligible()).toEqual(['n5', 'n7']);
    expect(pool.size).toBe(8);
    expect(pool.at(0).nodeId).toBe('n0');
  });

  it('samples distinct eligible members, preferring those with headroom, and none when none is eligible', () => {
    const { core, nodes, entry } = setup({ count: 200, input: (i) => ({ cpuPercent: i % 4 === 0 ? 95 : 10 }) });
    for (let i = 0; i < 200; i += 3) nodes[i]!.session.state = 'draining';
    const pool = new ProviderPool(entry, core.health).begin(undefined, core.clock.now());
    const random = mulberry32(1);
    const seen = new Set<string>();
    for (let round = 0; round < 200; round++) {
      const sample = pool.sample(SAMPLE_SIZE, random);
      // Half the members qualify, and probes are bounded: a sample may come out a little short.
      expect(sample.length).toBeGreaterThan(SAMPLE_SIZE / 2);
      expect(sample.length).toBeLessThanOrEqual(SAMPLE_SIZE);
      expect(new Set(sample).size).toBe(sample.length);
      for (const c of sample) {
        const i = Number(c.nodeId.slice(1));
        expect(i % 3 === 0 || i % 4 === 0).toBe(false);
        seen.add(c.nodeId);
      }
    }
    expect(seen.size).toBe(200 - 67 - 50 + 17); // every eligible member with headroom turns up
    // Only loaded members left: they are what a sample finds.
    for (const n of nodes) if (Number(n.nodeId.slice(1)) % 4 !== 0) n.session.state = 'draining';
    const loaded = pool.sample(SAMPLE_SIZE, random);
    expect(loaded.length).toBeGreaterThan(0);
    for (const c of loaded) expect(Number(c.nodeId.slice(1)) % 4).toBe(0);
    for (const n of nodes) n.session.state = 'draining';
    expect(pool.sample(SAMPLE_SIZE, random)).toEqual([]);
  });
});

describe('Router with a large pool: each strategy keeps its meaning', () => {
  it(`takes the pool path above ${SMALL_POOL_MAX} providers and the full path up to it`, () => {
    const small = setup({ count: SMALL_POOL_MAX, options: { defaultStrategy: 'test_recording_least_connections' } });
    handed.length = 0;
    small.pick();
    expect(handed[0]!.length).toBe(SMALL_POOL_MAX);
    const large = setup({ count: SMALL_POOL_MAX + 1, options: { defaultStrategy: 'test_recording_least_connections' } });
    handed.length = 0;
    large.pick();
    expect(handed[0]!.length).toBe(SAMPLE_SIZE);
  });

  it('pick_first: the first eligible provider in registration order, passing over loaded ones while others have headroom', () => {
    const { nodes, entry, pick } = setup({ options: { defaultStrategy: 'pick_first' }, fn: { maxConcurrent: 1 } });
    expect(pick()).toBe('n0');
    nodes[0]!.session.state = 'draining';
    entry.providers.get('n1')!.inFlight = 1;
    nodes[2]!.setCpu(95);
    expect(pick()).toBe('n3');
    for (const n of nodes) n.setCpu(95);
    expect(pick()).toBe('n2');
  });

  it('round_robin: every eligible provider once per cycle, in registration order', () => {
    const { nodes, pick } = setup({ options: { defaultStrategy: 'round_robin' } });
    nodes[5]!.session.state = 'draining';
    nodes[9]!.setCpu(99);
    const expected = nodes.map((n) => n.nodeId).filter((id) => id !== 'n5' && id !== 'n9');
    expect(Array.from({ length: expected.length * 2 }, () => pick())).toEqual([...expected, ...expected]);
  });

  it('weighted_round_robin: shares within 2 % of the tiers over many picks', () => {
    const tier = (i: number) => 1 + (i % 4);
    const { core, pick } = setup({ options: { defaultStrategy: 'weighted_round_robin' } });
    // A tier comes with each node's declaration of the function.
    for (const p of core.entry('f').providers.values()) p.spec = { ...p.spec, performanceTier: tier(Number(p.nodeId.slice(1))) };
    const total = Array.from({ length: SIZE }, (_, i) => tier(i)).reduce((a, b) => a + b, 0);
    const picks = counts(Array.from({ length: 50 * total }, () => pick()));
    for (let i = 0; i < SIZE; i++) {
      const share = picks.get(`n${i}`)! / (50 * total);
      expect(Math.abs(share - tier(i) / total)).toBeLessThan(0.02 * (tier(i) / total));
    }
  });

  it('consistent_hash: a key goes where the candidate-list path sends it, and only a leaving node’s keys move', () => {
    const { nodes, entry, pick } = setup({ options: { defaultStrategy: 'consistent_hash' } });
    const keys = Array.from({ length: 600 }, (_, i) => `user-${i}`);
    const reference = (list: readonly Candidate[]) => {
      const s = new ConsistentHashStrategy();
      return keys.map((k) => s.select(list, { ...ctx(), affinityKey: k })!.nodeId);
    };
    const before = keys.map((k) => pick({ affinityKey: k }));
    expect(before).toEqual(reference([...entry.providers.values()]));
    nodes[7]!.lose();
    const after = keys.map((k) => pick({ affinityKey: k }));
    expect(after).toEqual(reference([...entry.providers.values()]));
    keys.forEach((_, i) => {
      if (before[i] !== 'n7') expect(after[i]).toBe(before[i]);
      else expect(after[i]).not.toBe('n7');
    });
    expect(before.filter((id) => id === 'n7').length).toBeGreaterThan(0);
    // A draining node's keys go where a ring without it would send them; its return brings them back.
    nodes[8]!.session.state = 'draining';
    expect(keys.map((k) => pick({ affinityKey: k }))).toEqual(reference([...entry.providers.values()].filter((p) => p.nodeId !== 'n8')));
    nodes[8]!.session.state = 'active';
    expect(keys.map((k) => pick({ affinityKey: k }))).toEqual(after);
    expect(entry.strategy('consistent_hash').describe?.()).toMatchObject({ nodes: SIZE - 1, ringBuilds: 2 });
  });

  it('least_connections: the least loaded of a sample of distinct eligible providers (power of K choices)', () => {
    const { nodes, entry, pick } = setup({ count: 100, options: { defaultStrategy: 'test_recording_least_connections' } });
    for (const p of entry.providers.values()) p.inFlight = Number(p.nodeId.slice(1)) % 10 === 0 ? 0 : 3;
    nodes[10]!.session.state = 'draining';
    handed.length = 0;
    const picks = Array.from({ length: 500 }, () => pick());
    for (let i = 0; i < picks.length; i++) {
      const sample = handed[i]!;
      expect(sample.length).toBe(SAMPLE_SIZE);
      expect(new Set(sample.map((c) => c.nodeId)).size).toBe(SAMPLE_SIZE);
      expect(sample.map((c) => c.nodeId)).not.toContain('n10');
      const fewest = Math.min(...sample.map((c) => c.inFlight));
      expect(entry.providers.get(picks[i]!)!.inFlight).toBe(fewest);
    }
    // Nine idle nodes of 99: a sample of 16 holds one about 80 % of the time, a random pick 9 %.
    const idle = picks.filter((id) => Number(id.slice(1)) % 10 === 0).length;
    expect(idle / picks.length).toBeGreaterThan(0.7);
  });

  it('random and power_of_two: spread over eligible providers only', () => {
    for (const strategy of ['random', 'power_of_two']) {
      const { nodes, pick } = setup({ options: { defaultStrategy: strategy } });
      nodes[0]!.session.state = 'draining';
      nodes[1]!.setCpu(95);
      const picks = counts(Array.from({ length: 4600 }, () => pick()));
      expect(picks.has('n0')).toBe(false);
      expect(picks.has('n1')).toBe(false);
      expect(picks.size).toBe(SIZE - 2);
      for (const n of picks.values()) expect(n).toBeGreaterThan(40);
    }
  });

  it('every strategy avoids loaded providers while others have headroom, and uses them when all are loaded', () => {
    for (const strategy of ['pick_first', 'round_robin', 'weighted_round_robin', 'random', 'power_of_two', 'least_connections', 'least_load', 'resource_aware', 'latency_based', 'cost_aware', 'consistent_hash', 'smart_adaptive', 'dynamic']) {
      const { nodes, pick } = setup({ options: { defaultStrategy: strategy }, input: (i) => ({ cpuPercent: i % 2 === 0 ? 95 : 10 }) });
      for (let i = 0; i < 100; i++) expect(Number(pick({ affinityKey: `k${i}` }).slice(1)) % 2, strategy).toBe(1);
      for (const n of nodes) n.setCpu(97);
      expect(pick({ affinityKey: 'k' }), strategy).toMatch(/^n\d+$/);
    }
  });
});

describe('Router with a large pool: when the pool path finds nothing, the answer is the full path’s', () => {
  it('queues for room when every healthy provider is full, waits for a provider when none is healthy, and refuses a retry', () => {
    const { nodes, entry, route } = setup({ options: { defaultStrategy: 'round_robin' }, fn: { maxConcurrent: 1 } });
    for (const p of entry.providers.values()) p.inFlight = 1;
    const full = route();
    expect(full.type === 'queue' && full.reason).toBe('full');
    expect(full.type === 'queue' && full.error).toMatchObject({ code: 'OVERLOADED', message: 'every provider of f is at capacity', retryAfterMs: RETRY_AFTER_MS });
    for (const n of nodes) n.session.state = 'draining';
    const gap = route();
    expect(gap.type === 'queue' && gap.reason).toBe('gap');
    expect(gap.type === 'queue' && gap.error.message).toBe('no healthy node provides f');
    nodes[3]!.session.state = 'active';
    entry.providers.get('n3')!.inFlight = 0;
    expect(pickedNode(route())).toBe('n3');
    const retry = route({}, new Set(['n3']));
    expect(retry.type === 'refuse' && retry.error.code).toBe('NO_NODE_AVAILABLE');
  });

  it("finds the one provider a sample missed: latency_based's limit, cost_aware's budget", () => {
    const latency = setup({ options: { defaultStrategy: 'latency_based' } });
    latency.nodes[37]!.session.rttMs = 1;
    for (let i = 0; i < 20; i++) expect(latency.pick({ maxLatencyMs: 10 })).toBe('n37');

    const cost = setup({ options: { defaultStrategy: 'cost_aware' }, input: (i) => ({ capabilities: { costPerHour: i === 41 ? 0.001 : 3600 } }) });
    for (let i = 0; i < 20; i++) expect(cost.pick({ maxCost: 0.01 })).toBe('n41');
    const refused = cost.route({ maxCost: 1e-12 });
    expect(refused.type === 'refuse' && refused.error).toMatchObject({ code: 'BUDGET_EXCEEDED', message: expect.stringContaining(`(${SIZE} node(s) considered)`) });
  });

  it("a call's own requirements filter every provider", () => {
    const { pick, route } = setup({ input: (i) => ({ capabilities: { cpuCores: i === 30 ? 64 : 8 } }) });
    expect(pick({ requirements: { cpuCores: '>=32' } })).toBe('n30');
    const refused = route({ requirements: { cpuCores: '>=128' } });
    expect(refused.type === 'refuse' && refused.error.message).toBe(`no node meets the requirements of f: cpuCores >=128 excluded ${SIZE} of ${SIZE} nodes`);
  });

  it('a strategy that finds none falls back as it always has', () => {
    registerStrategy('test_pool_none', () => ({ name: 'test_pool_none', select: () => undefined, selectFrom: () => undefined }));
    const { route } = setup({ fn: { loadBalancing: { strategy: 'test_pool_none', fallbackStrategy: 'pick_first' } } });
    const d = route();
    expect([pickedNode(d), d.strategyName]).toEqual(['n0', 'pick_first']);
  });
});

function ctx(): SelectContext {
  return { functionName: 'f', random: mulberry32(1), now: () => 0, epochMs: () => 0, complexity: 1, requestBytes: 4, preferences: {} };
}
