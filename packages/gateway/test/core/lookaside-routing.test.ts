// Look-aside backends among a function's providers: picks (lookAside) may choose them, calls
// the gateway relays never do, on the small path and on the pool path alike. Fake clock
// and seeded random source (core-harness).
import { describe, expect, it } from 'vitest';
import { SMALL_POOL_MAX, type RouteDecision, type RoutableCall } from '../../src/routing/router.js';
import { Core } from '../support/core-harness.js';

function picked(d: RouteDecision): string {
  if (d.type !== 'picked') throw new Error(`expected a pick, got ${d.type}: ${d.error.message}`);
  return d.provider.nodeId;
}

/** Function `f` on `count` providers, all backends except those `nodes` names. */
function setup(count: number, nodes: ReadonlySet<number>, strategy = 'round_robin') {
  const core = new Core({ defaultStrategy: strategy });
  for (let i = 0; i < count; i++) {
    const n = core.addNode(`p${i}`, [{ name: 'f' }]);
    if (!nodes.has(i)) n.session.kind = 'backend';
  }
  const entry = core.entry('f');
  const call = (lookAside: boolean): RoutableCall => ({ entry, options: undefined, metadata: {}, requestBytes: 0, tried: undefined, lookAside });
  return { core, entry, route: (lookAside: boolean) => core.router.route(call(lookAside)) };
}

describe.each([
  ['a small set', 4],
  ['a pool (more than SMALL_POOL_MAX)', SMALL_POOL_MAX + 8],
])('backends in %s', (_label, count) => {
  it.each(['round_robin', 'pick_first', 'least_connections', 'random', 'smart_adaptive'])('%s: relayed calls go only to nodes; picks spread over every provider', (strategy) => {
    const last = count - 1;
    const { route } = setup(count, new Set([last]), strategy);
    for (let i = 0; i < 20; i++) expect(picked(route(false))).toBe(`p${last}`);
    const picks = new Set(Array.from({ length: 3 * count }, () => picked(route(true))));
    if (strategy === 'pick_first') expect(picks).toEqual(new Set(['p0']));
    else expect(picks.size).toBeGreaterThan(1);
  });

  it('a function only backends serve: relayed calls are refused at once, picks go on', () => {
    const { route, core, entry } = setup(count, new Set());
    const d = route(false);
    expect(d.type).toBe('refuse');
    expect(d.type === 'refuse' && d.error).toMatchObject({ code: 'NO_NODE_AVAILABLE', message: expect.stringMatching(new RegExp(`^no node provides f through the gateway; its ${count} look-aside backend\\(s\\)`)) });
    expect(picked(route(true))).toMatch(/^p\d+$/);
    // Waiting relayed calls are never pumped towards a backend.
    expect(core.router.hasRoom(entry)).toBe(false);
  });
});
