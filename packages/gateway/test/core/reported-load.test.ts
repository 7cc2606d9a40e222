// The rule by which a gateway counts a node's calls from its other gateways
// (registry/reported-load.ts), in fake time: heartbeats arrive at their interval, this
// gateway's own dispatches and replies move its counts in between.
import { FunctionSpec } from '@easyremote/protocol';
import { describe, expect, it } from 'vitest';
import { applyReportedLoad, elsewhereShare } from '../../src/registry/reported-load.js';
import { Core, type TestNode } from '../support/core-harness.js';

const HEARTBEAT_MS = 1000;

/** What NodeLinkService does with a heartbeat's per-function figures. */
function heartbeat(core: Core, node: TestNode, figures: Record<string, [inFlight: number, queued: number]>): void {
  node.heartbeat();
  applyReportedLoad(
    node.session,
    Object.entries(figures).map(([name, [inFlight, queued]]) => ({ name, inFlight, queued })),
    core.registry.functions,
  );
}

describe('elsewhereShare', () => {
  it('is what the node reported (running + queued) beyond this gateway’s own, never below 0', () => {
    expect(elsewhereShare(5, 2, 3)).toBe(4);
    expect(elsewhereShare(2, 0, 3)).toBe(0); // replies on their way, or invokes the node has not counted yet
    expect(elsewhereShare(3, 0, 3)).toBe(0);
    expect(elsewhereShare(NaN, 0, 0)).toBe(0);
  });
});

describe('calls a node runs for other gateways', () => {
  it('count, with this gateway’s own, in least_connections between heartbeats', () => {
    const core = new Core({ defaultStrategy: 'least_connections' });
    const a = core.addNode('a', [{ name: 'f' }]);
    const b = core.addNode('b', [{ name: 'f' }]);
    // t = 1 s: a runs 3 calls and queues 1 for another gateway; b is idle.
    core.clock.advance(HEARTBEAT_MS);
    heartbeat(core, a, { f: [3, 1] });
    heartbeat(core, b, { f: [0, 0] });
    expect(core.entry('f').providers.get('a')!.inFlightElsewhere).toBe(4);

    // Until the next heartbeat, b takes calls while its own count stays under a's 4.
    for (let i = 0; i < 4; i++) {
      core.call('f');
      core.clock.advance(50);
    }
    expect([a.invokes().length, b.invokes().length]).toEqual([0, 4]);
    // 4 against 4, then 4 against 5: a gets the next calls.
    core.call('f');
    core.call('f');
    expect(a.invokes().length).toBeGreaterThanOrEqual(1);

    // t = 2 s: the other gateway's calls on a have ended; a reports only what this gateway sent it.
    core.clock.advance(HEARTBEAT_MS);
    const ownOnA = a.invokes().length;
    heartbeat(core, a, { f: [ownOnA, 0] });
    expect(core.entry('f').providers.get('a')!.inFlightElsewhere).toBe(0);
    expect(core.health.nodes().find((n) => n.nodeId === 'a')).toMatchObject({ inFlight: ownOnA, inFlightElsewhere: 0 });
  });

  it('make a provider full: max_concurrent + queue_size counts them, and a call waits for room', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', maxConcurrent: 2, queueSize: 1 }]);
    core.clock.advance(HEARTBEAT_MS);
    heartbeat(core, a, { f: [2, 0] });
    const first = core.call('f');
    expect(a.invokes()).toHaveLength(1); // 2 elsewhere + 1 own = 3 = max_concurrent + queue_size
    const second = core.call('f');
    expect(a.invokes()).toHaveLength(1);
    expect(core.admission.size('f')).toBe(1);

    // The next heartbeat: the other gateway's two calls are done, this gateway's one is running.
    core.clock.advance(HEARTBEAT_MS);
    heartbeat(core, a, { f: [1, 0] });
    // Capacity is looked at again when something frees up: the lease sweep pumps waiting calls.
    core.dispatcher.pumpAll(core.registry.functions);
    expect(a.invokes()).toHaveLength(2);
    a.result(a.invokes()[0]!.attemptId, 'x');
    a.result(a.invokes()[1]!.attemptId, 'y');
    expect([first.sink.finals(), second.sink.finals()]).toEqual([[{ type: 'result', payload: 'x', nodeId: 'a' }], [{ type: 'result', payload: 'y', nodeId: 'a' }]]);
  });

  it('stay fixed between heartbeats while this gateway’s own count moves, and leave with the node', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f' }, { name: 'g' }]);
    const entry = core.entry('f');
    core.clock.advance(HEARTBEAT_MS);
    core.call('f');
    core.call('f');
    // The node counts this gateway's 2 and 5 from elsewhere, and 1 queued call of g.
    heartbeat(core, a, { f: [7, 0], g: [0, 1] });
    const p = entry.providers.get('a')!;
    expect([p.inFlight, p.inFlightElsewhere, entry.inFlight.total]).toEqual([2, 5, 7]);
    expect(a.session.inFlightElsewhere).toBe(6);

    core.clock.advance(HEARTBEAT_MS / 2);
    a.result(a.invokes()[0]!.attemptId, 'done');
    expect([p.inFlight, p.inFlightElsewhere, entry.inFlight.total]).toEqual([1, 5, 6]);

    // A heartbeat that leaves g out keeps g's last figures; one that names an undeclared function is ignored.
    core.clock.advance(HEARTBEAT_MS / 2);
    heartbeat(core, a, { f: [1, 0], nope: [9, 9] });
    expect([p.inFlightElsewhere, a.session.inFlightElsewhere, a.session.reported.has('nope')]).toEqual([0, 1, false]);

    a.lose();
    expect(entry.inFlight.total).toBe(0);
  });

  it('give the queue a strategy reads from the last heartbeat, for this node’s provider only', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f' }, { name: 'g' }]);
    const provider = core.entry('f').providers.get('a')!;
    expect(provider.queued).toBe(0);
    heartbeat(core, a, { f: [1, 3], g: [0, 7] });
    expect([provider.queued, core.entry('g').providers.get('a')!.queued]).toEqual([3, 7]);
    heartbeat(core, a, { f: [0, 0] });
    // g was left out of that heartbeat: it keeps its last figure, as the session's report does.
    expect([provider.queued, core.entry('g').providers.get('a')!.queued]).toEqual([0, 7]);
  });
});

describe('a provider’s capacity', () => {
  it('follows its declaration: max_concurrent + queue_size, none when max_concurrent is 0', () => {
    const core = new Core();
    core.addNode('a', [{ name: 'f', maxConcurrent: 2, queueSize: 1 }]);
    const provider = core.entry('f').providers.get('a')!;
    provider.inFlight = 2;
    expect(provider.full).toBe(false);
    provider.inFlightElsewhere = 1;
    expect(provider.full).toBe(true);
    provider.spec = FunctionSpec.fromPartial({ name: 'f', kind: 'unary', maxConcurrent: 4, queueSize: 0 });
    expect(provider.full).toBe(false);
    provider.inFlight = 3;
    expect(provider.full).toBe(true);
    provider.spec = FunctionSpec.fromPartial({ name: 'f', kind: 'unary', maxConcurrent: 0, queueSize: 5 });
    provider.inFlight = 1_000;
    expect(provider.full).toBe(false);
  });
});
