import { describe, expect, it } from 'vitest';
import { quote } from '@easyremote/protocol';
import type { FunctionSpec } from '@easyremote/protocol';
import { DEFAULT_STRATEGY, FunctionEntry } from '../../src/registry/function-entry.js';
import { Registry } from '../../src/registry/registry.js';
import { LatencyBasedStrategy } from '../../src/strategies/latency-based.js';
import { registerStrategy } from '../../src/strategies/registry.js';
import { Core, spec, type SpecInput } from '../support/core-harness.js';

registerStrategy('test_none', () => ({ name: 'test_none', select: () => undefined }));

/** What Registry.check throws for a registration (undefined when it accepts it). */
function refusal(nodeId: string, specs: SpecInput[], registry = new Registry()) {
  try {
    registry.check(nodeId, specs.map(spec));
    return undefined;
  } catch (err) {
    return err as Error & { code?: string };
  }
}

describe('FunctionEntry: configuration precedence', () => {
  const declared: SpecInput = {
    name: 'f',
    idempotent: false,
    timeoutMs: 500,
    requirements: { cpuCores: '>=2' },
    loadBalancing: { strategy: 'round_robin', healthCheck: { timeout: 100, retryCount: 1 }, preferences: { maxLatency: 300 }, priorLatencyMs: 20 },
  };

  it("uses the node's declaration where the gateway configures nothing", () => {
    const core = new Core();
    core.addNode('a', [declared]);
    expect(core.entry('f').config).toMatchObject({
      strategy: 'round_robin',
      fallbackStrategy: '',
      healthCheck: { enabled: true, timeout: 100, retryCount: 1 },
      requirements: { cpuCores: '>=2' },
      preferences: { maxLatency: 300 },
      idempotent: false,
      timeoutMs: 500,
      kind: 'unary',
    });
    expect(core.entry('f').config.strategyOptions).toMatchObject({ priorLatencyMs: 20 });
  });

  it("lets the gateway's configuration override the declaration, field by field", () => {
    const core = new Core({
      functions: {
        f: { strategy: 'pick_first', healthCheck: { retryCount: 5 }, timeoutMs: 1_000, idempotent: true, requirements: { cpuCores: '>=4' }, strategyOptions: { priorLatencyMs: 5 } },
      },
    });
    core.addNode('a', [declared], { capabilities: { cpuCores: 8 } });
    const { config } = core.entry('f');
    expect(config).toMatchObject({
      strategy: 'pick_first',
      healthCheck: { enabled: true, timeout: 100, retryCount: 5 },
      requirements: { cpuCores: '>=4' },
      preferences: { maxLatency: 300 },
      idempotent: true,
      timeoutMs: 1_000,
    });
    expect(config.strategyOptions).toMatchObject({ priorLatencyMs: 5 });
    // The parsed requirements follow the override too.
    expect(core.entry('f').requirements.map((r) => r.source)).toEqual(['cpuCores >=4']);
  });

  it("lets a call's options override both (the router applies them)", () => {
    const core = new Core({ functions: { f: { strategy: 'pick_first' } } });
    core.addNode('a', [declared]);
    const route = (strategy?: string) => core.router.route(core.call('f', { start: false, options: strategy ? { strategy } : undefined }).call).strategyName;
    expect(route()).toBe('pick_first');
    expect(route('random')).toBe('random');
  });

  it("falls back to the gateway's defaults: strategy and retry count", () => {
    const core = new Core({ defaultStrategy: 'random', retryCount: 7 });
    core.addNode('a', [{ name: 'f' }]);
    expect(core.entry('f').config).toMatchObject({ strategy: 'random', healthCheck: { enabled: true, timeout: 0, retryCount: 7 } });
    // A registry given no defaults uses the shipped ones.
    const bare = new Registry();
    bare.setFunctions(core.addNode('b', [{ name: 'g' }]).session, [spec({ name: 'g' })]);
    expect(bare.functions.get('g')!.config).toMatchObject({ strategy: DEFAULT_STRATEGY, healthCheck: { retryCount: 2 } });
    expect(DEFAULT_STRATEGY).toBe('smart_adaptive');
  });

  it('merges requirements from the declaration and its loadBalancing object', () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', requirements: { cpuCores: '>=2' }, loadBalancing: { requirements: { memory: '>=1GB' } } }]);
    expect(core.entry('f').config.requirements).toEqual({ cpuCores: '>=2', memory: '>=1GB' });
  });
});

describe('FunctionEntry: strategies are built with the function options', () => {
  it("a fallback strategy sees the function's options (latency_based's priorLatencyMs)", () => {
    // test_none never picks; latency_based with its prior of 5 ms meets the call's 10 ms limit, with the default 100 ms it does not.
    const routed = (lb: Record<string, unknown>) => {
      const core = new Core();
      core.addNode('a', [{ name: 'f', loadBalancing: { strategy: 'test_none', fallbackStrategy: 'latency_based', ...lb } }]);
      const d = core.router.route(core.call('f', { start: false, options: { maxLatencyMs: 10 } }).call);
      return d.type === 'picked' ? `${d.strategyName}:${d.provider.nodeId}` : d.error.code;
    };
    expect(routed({ priorLatencyMs: 5 })).toBe('latency_based:a');
    expect(routed({ prior_latency_ms: 5 })).toBe('latency_based:a');
    expect(routed({})).toBe('NO_NODE_AVAILABLE');
  });

  it("a strategy named only by a call is built with the function's options", () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', loadBalancing: { strategy: 'pick_first', priorLatencyMs: 5 } }]);
    const d = core.router.route(core.call('f', { start: false, options: { strategy: 'latency_based', maxLatencyMs: 10 } }).call);
    expect(d.type).toBe('picked');
    const s = core.entry('f').strategy('latency_based');
    expect(s).toBeInstanceOf(LatencyBasedStrategy);
    expect((s as LatencyBasedStrategy).expectedLatencyMs(core.entry('f').providers.get('a')!)).toBe(5);
  });

  it('builds the configured strategy and fallback up front, one instance each', () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', loadBalancing: { strategy: 'round_robin', fallbackStrategy: 'random' } }]);
    const entry = core.entry('f');
    expect(entry.strategy('round_robin').name).toBe('round_robin');
    expect(entry.strategy('round_robin')).toBe(entry.strategy('round_robin'));
    expect(entry.strategy('random')).toBe(entry.strategy('random'));
  });
});

describe('Registry: conflicting declarations', () => {
  it('the earliest registered provider defines the function; the conflict is described and emitted once', () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', loadBalancing: 'pick_first' }]);
    core.addNode('b', [{ name: 'f', loadBalancing: 'round_robin' }]);
    const conflict = "b declare f differently from a; a's declaration is used";
    expect(core.entry('f').config.strategy).toBe('pick_first');
    expect(core.entry('f').conflict).toBe(conflict);
    // b registering the same declaration again, and c agreeing with a, add nothing new.
    core.registry.setFunctions(core.registry.sessions.get('b')!, [spec({ name: 'f', loadBalancing: 'round_robin' })]);
    core.addNode('c', [{ name: 'f', loadBalancing: 'pick_first' }]);
    expect(core.events.filter((e) => e.startsWith('config-conflict:'))).toEqual([`config-conflict:f:${conflict}`]);
    expect(core.entry('f').config.strategy).toBe('pick_first');
  });

  it("capacity and cost are not part of a declaration: providers may differ there without conflict", () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', maxConcurrent: 1, costPerHour: 1 }]);
    core.addNode('b', [{ name: 'f', maxConcurrent: 8, queueSize: 4, costPerHour: 9, performanceTier: 2 }]);
    expect(core.entry('f').conflict).toBe('');
    expect(core.events.some((e) => e.startsWith('config-conflict:'))).toBe(false);
  });

  it("when the defining provider leaves, the next one's declaration takes over", () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', loadBalancing: 'pick_first', idempotent: false }]);
    core.addNode('b', [{ name: 'f', loadBalancing: 'round_robin', idempotent: true }]);
    core.addNode('c', [{ name: 'f', loadBalancing: 'pick_first', idempotent: false }]);
    a.lose();
    const entry = core.entry('f');
    // b defines the function now, but a retry after node loss needs every provider's word: c's is no.
    expect(entry.config).toMatchObject({ strategy: 'round_robin', idempotent: false });
    expect(entry.conflict).toBe("c declare f differently from b; b's declaration is used; not retried after a node is lost, since c do not declare it idempotent");
    // Routing uses the new definition: round robin over b and c.
    const picks = [0, 1, 2].map(() => {
      const d = core.router.route(core.call('f', { start: false }).call);
      return d.type === 'picked' ? d.provider.nodeId : d.type;
    });
    expect(picks).toEqual(['b', 'c', 'b']);
  });
});

describe('Registry.check', () => {
  it('accepts a well-formed registration', () => {
    expect(refusal('node-1', [{ name: 'f' }, { name: 'g', kind: 'stream', loadBalancing: { strategy: 'latency_based', priorLatencyMs: 5 } }])).toBeUndefined();
  });

  it('refuses a bad node id', () => {
    for (const id of ['', 'has space', 'slash/y', 'x'.repeat(129)]) {
      expect(refusal(id, [{ name: 'f' }]), JSON.stringify(id)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`node id ${quote(id)} is not allowed`) });
    }
    // The caller's input is quoted, never echoed whole.
    expect(refusal('y'.repeat(5000), [{ name: 'f' }])!.message.length).toBeLessThan(300);
  });

  it('refuses a registration with no functions', () => {
    expect(refusal('n1', [])).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'node n1 registers no functions' });
  });

  it('refuses bad and duplicate function names, naming the node', () => {
    expect(refusal('n1', [{ name: '9lives' }])).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^node n1: function name "9lives" is not allowed/) });
    expect(refusal('n1', [{ name: 'f' }, { name: 'f' }])).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'node n1: function f is listed twice' });
  });

  it('refuses an unknown kind', () => {
    expect(refusal('n1', [{ name: 'f', kind: 'bidi' }])?.message).toBe('node n1: function f: kind must be unary or stream, got "bidi"');
  });

  it('refuses unknown strategy and fallback names', () => {
    expect(refusal('n1', [{ name: 'f', loadBalancing: { strategy: 'fastest' } }])?.message).toMatch(/^node n1: function f: unknown strategy "fastest"; known: .*round_robin/);
    expect(refusal('n1', [{ name: 'f', loadBalancing: { fallbackStrategy: 42 } }])?.message).toMatch(/^node n1: function f: unknown fallbackStrategy 42; known:/);
  });

  it('refuses malformed loadBalancing JSON, and JSON that is not an object', () => {
    expect(refusal('n1', [{ name: 'f', loadBalancingJson: '{strategy:' }])).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'node n1: function f: loadBalancing is not valid JSON' });
    for (const json of ['[]', '"round_robin"', 'null', '3']) {
      expect(refusal('n1', [{ name: 'f', loadBalancingJson: json }])?.message, json).toBe('node n1: function f: loadBalancing must be an object');
    }
  });

  it('refuses a strategy option of the wrong type, naming the node, the function and the option', () => {
    const err = refusal('gpu-7', [{ name: 'infer', loadBalancing: { strategy: 'latency_based', priorLatencyMs: 'soon' } }]);
    expect(err?.code).toBe('INVALID_ARGUMENT');
    expect(err?.message).toMatch(/^node gpu-7: function infer: /);
    expect(err?.message).toContain('priorLatencyMs');
    expect(err?.message).toContain('"soon"');
    // Options are checked against every strategy a call could name, not only the configured one.
    expect(refusal('gpu-7', [{ name: 'infer', loadBalancing: { strategy: 'round_robin', max_cost: 'cheap' } }])?.message).toMatch(/^node gpu-7: function infer: .*max_cost/);
  });

  it('refuses a malformed requirement, quoting it', () => {
    const err = refusal('n1', [{ name: 'train', requirements: { cpuCores: '>= many' } }]);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^node n1: function train: .*>= many/) });
  });

  it("checks the declaration as it resolves under the gateway's overrides", () => {
    const registry = new Registry({ f: { strategyOptions: { priorLatencyMs: 'later' } } });
    expect(refusal('n1', [{ name: 'f' }], registry)?.message).toMatch(/^node n1: function f: .*priorLatencyMs/);
  });

  it('changes nothing: a refused registration leaves the registry as it was', () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f' }]);
    expect(() => core.addNode('b', [{ name: 'g' }, { name: 'f', loadBalancing: { strategy: 'nope' } }])).toThrow(/unknown strategy "nope"/);
    expect([...core.registry.functions.keys()]).toEqual(['f']);
    expect([...core.registry.sessions.keys()]).toEqual(['a']);
  });
});

describe('Registry: sessions and providers', () => {
  it("removing a session removes its providers, and the functions left with none", () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f' }, { name: 'only-a' }]);
    core.addNode('b', [{ name: 'f' }]);
    a.lose();
    expect([...core.registry.sessions.keys()]).toEqual(['b']);
    expect([...core.entry('f').providers.keys()]).toEqual(['b']);
    // A function left without providers is kept for the gap window (a node may be restarting)...
    expect(core.entry('only-a').providers.size).toBe(0);
    core.clock.advance(9_999);
    core.registry.sweepEmpty();
    expect([...core.registry.functions.keys()]).toEqual(['f', 'only-a']);
    // ...then forgotten.
    core.clock.advance(1);
    core.registry.sweepEmpty();
    expect([...core.registry.functions.keys()]).toEqual(['f']);
    expect(core.events).toContain('function-removed:only-a');
    expect(core.events).not.toContain('function-removed:f');
  });

  it("removing a superseded session leaves its successor's providers alone", () => {
    const core = new Core();
    const old = core.addNode('a', [{ name: 'f' }]);
    const successor = core.addNode('a', [{ name: 'f' }]);
    core.registry.remove(old.session);
    expect(core.registry.sessions.get('a')).toBe(successor.session);
    expect(core.entry('f').providers.get('a')?.session).toBe(successor.session);
  });

  it('re-registration replaces the function list: functions no longer listed lose this provider', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f' }, { name: 'g' }]);
    core.registry.setFunctions(a.session, [spec({ name: 'f', maxConcurrent: 3 })]);
    expect(core.entry('g').providers.size).toBe(0);
    core.clock.advance(10_000);
    core.registry.sweepEmpty();
    expect([...core.registry.functions.keys()]).toEqual(['f']);
    expect(core.entry('f').providers.get('a')!.maxConcurrent).toBe(3);
    expect(core.events).toContain('function-removed:g');
  });

  it('counts a session’s call slots over its functions, 0 when any is unlimited', () => {
    const core = new Core();
    expect(core.addNode('a', [{ name: 'f', maxConcurrent: 2 }, { name: 'g', maxConcurrent: 3 }]).session.slotCapacity).toBe(5);
    expect(core.addNode('b', [{ name: 'f', maxConcurrent: 2 }, { name: 'h' }]).session.slotCapacity).toBe(0);
  });

  it('emits provider-added for every function a session registers or re-registers (waiting calls may move)', () => {
    const core = new Core();
    const added: string[] = [];
    core.registry.on('provider-added', (e) => added.push(e.name));
    const node = core.addNode('x', [{ name: 'f' }, { name: 'g' }]);
    core.registry.setFunctions(node.session, [spec({ name: 'f' })]);
    expect(added).toEqual(['f', 'g', 'f']);
  });

  it('prepare is the one check: FunctionEntry.prepare throws what check reports', () => {
    const bad: FunctionSpec = spec({ name: 'f', loadBalancing: { strategy: 'latency_based', loadPenalty: 'high' } });
    expect(() => FunctionEntry.prepare(bad, {}, { strategy: 'pick_first', retryCount: 2 })).toThrow(/loadPenalty/);
  });
});
