import { describe, expect, it } from 'vitest';
import type { CallOptions } from '@easyremote/protocol';
import { RETRY_AFTER_MS, type RouteDecision } from '../../src/routing/router.js';
import { registerStrategy } from '../../src/strategies/registry.js';
import type { Candidate } from '../../src/strategies/strategy.js';
import { Core, type CoreOptions, type NodeInput, type SpecInput } from '../support/core-harness.js';

// Strategies whose behaviour a test needs to control.
registerStrategy('test_none', () => ({ name: 'test_none', select: () => undefined }));
registerStrategy('test_throws', () => ({
  name: 'test_throws',
  select: () => {
    throw new Error('strategy bug');
  },
}));
registerStrategy('test_last', () => ({ name: 'test_last', select: (cs: readonly Candidate[]) => cs.at(-1) }));

interface Setup {
  options?: CoreOptions;
  fn?: Omit<SpecInput, 'name'>;
  nodes: Array<string | ({ id: string } & NodeInput)>;
}

/** A core with function `f` on the given nodes, in this order. */
function setup({ options, fn = {}, nodes }: Setup) {
  const core = new Core(options);
  const byId = Object.fromEntries(
    nodes.map((n) => {
      const { id, ...input } = typeof n === 'string' ? { id: n } : n;
      return [id, core.addNode(id, [{ name: 'f', ...fn }], input)];
    }),
  );
  const route = (opts: Partial<CallOptions> & { metadata?: Record<string, string>; args?: string } = {}): RouteDecision => {
    const { metadata, args, ...options } = opts;
    return core.router.route(core.call('f', { start: false, options: Object.keys(options).length ? options : undefined, metadata, args }).call);
  };
  return { core, nodes: byId, route, entry: core.entry('f') };
}

function pickedNode(d: RouteDecision): string {
  if (d.type !== 'picked') throw new Error(`expected a pick, got ${d.type}: ${d.error.message}`);
  return d.provider.nodeId;
}

/** A `queue` decision to wait for a provider (none usable now); its error is the answer if none comes. */
function gapWait(d: RouteDecision) {
  if (d.type !== 'queue' || d.reason !== 'gap') throw new Error(`expected to wait for a provider, got ${d.type}`);
  return d.error;
}

function refusal(d: RouteDecision) {
  if (d.type !== 'refuse') throw new Error(`expected a refusal, got ${d.type}`);
  return d.error;
}

const gpu = (gb: number) => ({ capabilities: { gpus: [{ index: 0, model: 'RTX', vramTotalBytes: gb * 1e9 }] } });

describe('Router: hard filters', () => {
  it('skips a draining node; when every node is draining the call may wait for a provider', () => {
    const { nodes, route } = setup({ nodes: ['a', 'b'] });
    nodes.a!.session.state = 'draining';
    expect(pickedNode(route())).toBe('b');
    nodes.b!.session.state = 'draining';
    expect(gapWait(route())).toMatchObject({ code: 'NO_NODE_AVAILABLE', message: 'no healthy node provides f', retryAfterMs: RETRY_AFTER_MS });
  });

  it('skips a node whose lease has expired on the clock, and takes it back once it is heard from', () => {
    const { core, nodes, route } = setup({ options: { leaseMs: 1_000 }, nodes: ['a', 'b'] });
    core.clock.advance(1_000);
    expect(pickedNode(route())).toBe('a'); // exactly at the lease: still alive
    nodes.b!.heartbeat();
    core.clock.advance(1);
    expect(pickedNode(route())).toBe('b');
    core.clock.advance(1_000);
    expect(gapWait(route()).code).toBe('NO_NODE_AVAILABLE');
    nodes.a!.heartbeat();
    expect(pickedNode(route())).toBe('a');
  });

  it('skips a node ejected for this function when healthCheck is enabled, but not for its other functions', () => {
    const core = new Core({ outlierDetection: { consecutiveFailures: 2 } });
    for (const id of ['a', 'b']) core.addNode(id, [{ name: 'f' }, { name: 'g' }]);
    core.detector.record('a', 'f', false);
    core.detector.record('a', 'f', false);
    expect(core.detector.state('a', 'f')).toBe('open');
    const routeOf = (fn: string) => core.router.route(core.call(fn, { start: false }).call);
    expect(pickedNode(routeOf('f'))).toBe('b');
    expect(pickedNode(routeOf('g'))).toBe('a');
  });

  it('does not filter an ejected node when the function turns healthCheck off (declared or configured)', () => {
    const declared = setup({ options: { outlierDetection: { consecutiveFailures: 1 } }, fn: { loadBalancing: { healthCheck: { enabled: false } } }, nodes: ['a', 'b'] });
    declared.core.detector.record('a', 'f', false);
    expect(declared.core.detector.state('a', 'f')).toBe('open');
    expect(pickedNode(declared.route())).toBe('a');

    const configured = setup({ options: { outlierDetection: { consecutiveFailures: 1 }, functions: { f: { healthCheck: { enabled: false } } } }, nodes: ['a', 'b'] });
    configured.core.detector.record('a', 'f', false);
    expect(configured.core.detector.state('a', 'f')).toBe('open');
    expect(pickedNode(configured.route())).toBe('a');
  });

  it('skips nodes the call already tried; with none left the call is refused, not queued', () => {
    const { core, route, entry } = setup({ nodes: ['a', 'b'] });
    const { call } = core.call('f', { start: false });
    call.tried = new Set(['a']);
    expect(pickedNode(core.router.route(call))).toBe('b');
    call.tried.add('b');
    expect(refusal(core.router.route(call)).code).toBe('NO_NODE_AVAILABLE');
    expect(pickedNode(route())).toBe('a'); // other calls are not affected
    expect(entry.providers.size).toBe(2);
  });
});

describe('Router: capacity', () => {
  it('queues (with Overloaded and a retry-after) when every healthy provider is full', () => {
    const { route, entry } = setup({ fn: { maxConcurrent: 1, queueSize: 1 }, nodes: ['a', 'b'] });
    entry.providers.get('a')!.inFlight = 2;
    expect(pickedNode(route())).toBe('b');
    entry.providers.get('b')!.inFlight = 2;
    const d = route();
    expect(d.type).toBe('queue');
    expect(d.type === 'queue' && d.error).toMatchObject({ code: 'OVERLOADED', message: 'every provider of f is at capacity', retryAfterMs: RETRY_AFTER_MS });
    expect(d.strategyName).toBe('pick_first');
  });

  it('waits for room while a healthy provider is full, and for a provider once none is healthy', () => {
    const { nodes, route, entry } = setup({ fn: { maxConcurrent: 1 }, nodes: ['a', 'b'] });
    entry.providers.get('a')!.inFlight = 1; // healthy but full
    nodes.b!.session.state = 'draining'; // room but not routable
    const full = route();
    expect(full.type === 'queue' && full.reason).toBe('full');
    nodes.a!.session.state = 'draining';
    expect(gapWait(route()).code).toBe('NO_NODE_AVAILABLE');
  });

  it('a retry (a call that already tried a node) is refused rather than kept waiting', () => {
    const { core, nodes } = setup({ nodes: ['a', 'b'] });
    nodes.b!.session.state = 'draining';
    const retried = core.call('f', { start: false }).call;
    retried.tried = new Set(['a']);
    expect(refusal(core.router.route(retried)).code).toBe('NO_NODE_AVAILABLE');
  });

  it('hasRoom: some routable provider is not full', () => {
    const { core, nodes, entry } = setup({ fn: { maxConcurrent: 1 }, nodes: ['a', 'b'] });
    expect(core.router.hasRoom(entry)).toBe(true);
    entry.providers.get('a')!.inFlight = 1;
    expect(core.router.hasRoom(entry)).toBe(true);
    nodes.b!.session.state = 'draining';
    expect(core.router.hasRoom(entry)).toBe(false);
    entry.providers.get('a')!.inFlight = 0;
    expect(core.router.hasRoom(entry)).toBe(true);
  });
});

describe('Router: requirements', () => {
  it('refuses with a message naming each requirement and how many nodes it excluded', () => {
    const { route } = setup({
      fn: { requirements: { gpuMemory: '>=16GB', cpuCores: '>=16' } },
      nodes: [
        { id: 'small-gpu', ...gpu(8) },
        { id: 'no-gpu' },
        { id: 'few-cores', capabilities: { cpuCores: 4, gpus: [{ index: 0, model: 'RTX', vramTotalBytes: 24e9 }] } },
      ],
    });
    expect(refusal(route())).toMatchObject({
      code: 'NO_NODE_AVAILABLE',
      message: 'no node meets the requirements of f: gpuMemory >=16GB excluded 2 of 3 nodes; cpuCores >=16 excluded 1 of 3 nodes',
    });
  });

  it("merges a call's requirements over the function's: new keys add, the same key replaces", () => {
    const { route } = setup({
      fn: { requirements: { gpuMemory: '>=16GB' } },
      nodes: [
        { id: 'g8-c32', capabilities: { cpuCores: 32, gpus: [{ index: 0, model: 'RTX', vramTotalBytes: 8e9 }] } },
        { id: 'g24-c8', capabilities: { cpuCores: 8, gpus: [{ index: 0, model: 'RTX', vramTotalBytes: 24e9 }] } },
      ],
    });
    expect(pickedNode(route())).toBe('g24-c8');
    // Added: both requirements hold, and no node meets both.
    expect(refusal(route({ requirements: { cpuCores: '>=16' } })).message).toBe(
      'no node meets the requirements of f: gpuMemory >=16GB excluded 1 of 2 nodes; cpuCores >=16 excluded 1 of 2 nodes',
    );
    // Replaced: the call's gpuMemory lets the 8 GB node in, and cpuCores picks it.
    expect(pickedNode(route({ requirements: { gpuMemory: '>=4GB', cpuCores: '>=16' } }))).toBe('g8-c32');
  });

  it("refuses a call whose own requirement does not parse, quoting it", () => {
    const { route } = setup({ nodes: ['a'] });
    expect(refusal(route({ requirements: { gpuMemory: 'lots' } }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('lots') });
  });
});

describe('Router: the availability soft filter', () => {
  it('avoids a loaded node while another has headroom', () => {
    const { route } = setup({ nodes: [{ id: 'busy', cpuPercent: 95 }, { id: 'idle', cpuPercent: 10 }] });
    expect(pickedNode(route())).toBe('idle');
  });

  it('uses loaded nodes when all of them are loaded', () => {
    const { route } = setup({ nodes: [{ id: 'busy1', cpuPercent: 95 }, { id: 'busy2', cpuPercent: 99 }] });
    expect(pickedNode(route())).toBe('busy1');
  });

  it('follows the configured availability threshold', () => {
    const { route } = setup({ options: { availableThreshold: 0.5 }, nodes: [{ id: 'half', cpuPercent: 60 }, { id: 'idle', cpuPercent: 10 }] });
    expect(pickedNode(route())).toBe('idle');
  });

  it('still avoids a loaded node when requirements removed a different loaded node', () => {
    // Two loaded nodes and one idle; a requirement excludes one loaded node. The other
    // loaded node must still give way to the idle one.
    const { route } = setup({
      fn: { requirements: { cpuCores: '>=8' } },
      nodes: [
        { id: 'busy-small', cpuPercent: 95, capabilities: { cpuCores: 2 } },
        { id: 'busy-big', cpuPercent: 95, capabilities: { cpuCores: 16 } },
        { id: 'idle-big', cpuPercent: 10, capabilities: { cpuCores: 16 } },
      ],
    });
    expect(pickedNode(route())).toBe('idle-big');
  });
});

describe('Router: strategies', () => {
  it("uses the fallback strategy when the strategy finds none, and reports the fallback's name", () => {
    const { route, entry } = setup({ fn: { loadBalancing: { strategy: 'test_none', fallbackStrategy: 'test_last' } }, nodes: ['a', 'b'] });
    const d = route();
    expect(pickedNode(d)).toBe('b');
    expect(d.strategyName).toBe('test_last');
    expect(d.type === 'picked' && d.strategy).toBe(entry.strategy('test_last'));
  });

  it("a call's fallback replaces the function's", () => {
    const { route } = setup({ fn: { loadBalancing: { strategy: 'test_none', fallbackStrategy: 'test_last' } }, nodes: ['a', 'b'] });
    const d = route({ fallbackStrategy: 'pick_first' });
    expect([pickedNode(d), d.strategyName]).toEqual(['a', 'pick_first']);
  });

  it('refuses, naming strategy and fallback, when neither finds a node', () => {
    const bare = setup({ fn: { loadBalancing: 'test_none' }, nodes: ['a', 'b'] });
    expect(refusal(bare.route())).toMatchObject({ code: 'NO_NODE_AVAILABLE', message: 'strategy test_none found no node for f among 2' });
    const both = setup({ fn: { loadBalancing: { strategy: 'test_none', fallbackStrategy: 'test_none' } }, nodes: ['a'] });
    const d = both.route();
    expect(refusal(d).message).toBe('strategy test_none and fallback test_none found no node for f among 1');
  });

  it("a strategy's own refusal (cost_aware's BudgetExceeded) is final: the fallback does not run", () => {
    const { route } = setup({
      fn: { loadBalancing: { strategy: 'cost_aware', fallbackStrategy: 'pick_first' }, costPerHour: 3600 },
      nodes: ['a', 'b'],
    });
    expect(['a', 'b']).toContain(pickedNode(route()));
    const d = route({ maxCost: 1e-9 });
    expect(refusal(d)).toMatchObject({ code: 'BUDGET_EXCEEDED', message: expect.stringContaining('no node of f fits the budget') });
    expect(d.strategyName).toBe('cost_aware');
  });

  it('refuses an unknown per-call strategy or fallback with INVALID_ARGUMENT, listing the known ones', () => {
    const { route } = setup({ nodes: ['a'] });
    for (const options of [{ strategy: 'no_such' }, { fallbackStrategy: 'no_such' }]) {
      const err = refusal(route(options));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(/^unknown load-balancing strategy "no_such"; known: .*round_robin/);
    }
  });

  it('turns a strategy that throws a plain Error into an INTERNAL refusal instead of throwing', () => {
    const { route } = setup({ fn: { loadBalancing: { strategy: 'test_throws', fallbackStrategy: 'pick_first' } }, nodes: ['a'] });
    let d: RouteDecision | undefined;
    expect(() => (d = route())).not.toThrow();
    expect(refusal(d!)).toMatchObject({ code: 'INTERNAL', message: 'strategy test_throws failed for f: strategy bug' });
    expect(d!.strategyName).toBe('test_throws');
    // A per-call strategy that throws is refused the same way.
    const plain = setup({ nodes: ['a'] });
    expect(refusal(plain.route({ strategy: 'test_throws' })).code).toBe('INTERNAL');
  });

  it("`picked` carries the very strategy instance the function entry holds, across calls", () => {
    const { route, entry } = setup({ fn: { loadBalancing: 'round_robin' }, nodes: ['a', 'b', 'c'] });
    const decisions = [route(), route(), route(), route()];
    for (const d of decisions) expect(d.type === 'picked' && d.strategy).toBe(entry.strategy('round_robin'));
    // One instance means one cycle: round robin's state persists between calls.
    expect(decisions.map(pickedNode)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('a per-call strategy is one instance per function too, and is what the decision names', () => {
    const { route, entry } = setup({ fn: { loadBalancing: 'pick_first' }, nodes: ['a', 'b'] });
    const d1 = route({ strategy: 'round_robin' });
    const d2 = route({ strategy: 'round_robin' });
    expect([pickedNode(d1), pickedNode(d2)]).toEqual(['a', 'b']);
    expect(d1.strategyName).toBe('round_robin');
    expect(d1.type === 'picked' && d1.strategy).toBe(entry.strategy('round_robin'));
    expect(d2.type === 'picked' && d2.strategy).toBe(entry.strategy('round_robin'));
    expect(pickedNode(route())).toBe('a');
  });
});

describe('Router: the selection context', () => {
  const ctx = (d: RouteDecision) => {
    if (d.type !== 'picked') throw new Error(`expected a pick, got ${d.type}`);
    return d.context;
  };

  it("takes the function's preferences when the call names none", () => {
    const { route } = setup({ fn: { loadBalancing: { preferences: { preferLocal: 'eu', maxLatency: 500, costLimit: 2 } } }, nodes: ['a'] });
    expect(ctx(route()).preferences).toEqual({ preferLocation: 'eu', maxLatencyMs: 500, maxCost: 2 });
  });

  it("lets the call's preferences override the function's, field by field", () => {
    const { route } = setup({ fn: { loadBalancing: { preferences: { preferLocal: 'eu', maxLatency: 500, costLimit: 2 } } }, nodes: ['a'] });
    expect(ctx(route({ preferLocation: 'us', maxLatencyMs: 100 })).preferences).toEqual({ preferLocation: 'us', maxLatencyMs: 100, maxCost: 2 });
    expect(ctx(route({ maxCost: 0.5 })).preferences).toEqual({ preferLocation: 'eu', maxLatencyMs: 500, maxCost: 0.5 });
  });

  it("reads preferLocal: true as the gateway's own location, and gateway configuration over the declaration", () => {
    const local = setup({ options: { location: 'rack-7' }, fn: { loadBalancing: { preferences: { preferLocal: true } } }, nodes: ['a'] });
    expect(ctx(local.route()).preferences).toEqual({ preferLocation: 'rack-7' });
    const configured = setup({ options: { functions: { f: { preferences: { maxLatency: 50 } } } }, fn: { loadBalancing: { preferences: { maxLatency: 500 } } }, nodes: ['a'] });
    expect(ctx(configured.route()).preferences).toEqual({ maxLatencyMs: 50 });
  });

  it('takes the affinity key from the options before the metadata, and carries size, complexity and the clock', () => {
    const { core, route } = setup({ nodes: ['a'] });
    expect(ctx(route({ affinityKey: 'k1' })).affinityKey).toBe('k1');
    expect(ctx(route({ affinityKey: 'k1', metadata: { 'x-easyremote-affinity': 'k2' } })).affinityKey).toBe('k1');
    expect(ctx(route({ metadata: { 'x-easyremote-affinity': 'k2' } })).affinityKey).toBe('k2');
    expect(ctx(route()).affinityKey).toBeUndefined();
    const c = ctx(route({ args: 'twelve bytes' }));
    expect([c.requestBytes, c.complexity, c.functionName]).toEqual([12, 1, 'f']);
    expect(ctx(route({ complexity: 3 })).complexity).toBe(3);
    expect([c.now(), c.epochMs()]).toEqual([core.clock.now(), core.clock.epochMs()]);
  });

  it('draws from the seeded random source: the same seed routes random the same way', () => {
    const picks = (seed: number) => {
      const { route } = setup({ options: { seed }, fn: { loadBalancing: 'random' }, nodes: ['a', 'b', 'c', 'd'] });
      return Array.from({ length: 12 }, () => pickedNode(route()));
    };
    expect(picks(11)).toEqual(picks(11));
    expect(new Set(picks(11)).size).toBeGreaterThan(1);
  });
});
