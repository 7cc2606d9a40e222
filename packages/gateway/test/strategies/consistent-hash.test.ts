import { describe, expect, it } from 'vitest';
import { ConsistentHashStrategy, hash32 } from '../../src/strategies/consistent-hash.js';
import type { Candidate } from '../../src/strategies/strategy.js';
import { candidate, context, listPool, mulberry32, nodes, withFields } from './fixtures.js';

const KEYS = Array.from({ length: 2000 }, (_, i) => `machine-${i}`);

function assign(s: ConsistentHashStrategy, list: readonly Candidate[]): Map<string, string> {
  return new Map(KEYS.map((k) => [k, s.select(list, context({ affinityKey: k }))!.nodeId]));
}

describe('consistent_hash', () => {
  it('hashes deterministically and spreads similar strings', () => {
    expect(hash32('node-1#7')).toBe(hash32('node-1#7'));
    expect(hash32('node-1#7')).not.toBe(hash32('node-1#8'));
    // Pinned (checked against an independent implementation): a change here would move every key.
    expect(hash32('')).toBe(2872998923);
    expect(hash32('machine-1')).toBe(943353236);
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) buckets[hash32(`k${i}`) >>> 28]! += 1;
    for (const b of buckets) expect(b).toBeGreaterThan(800);
  });

  it('maps the same key to the same node and spreads keys fairly', () => {
    const list = nodes(5);
    const a = assign(new ConsistentHashStrategy(), list);
    const b = assign(new ConsistentHashStrategy(), [...list].reverse());
    expect([...a]).toEqual([...b]); // candidate order does not matter
    const share = new Map<string, number>();
    for (const n of a.values()) share.set(n, (share.get(n) ?? 0) + 1);
    expect(share.size).toBe(5);
    for (const n of share.values()) expect(n).toBeGreaterThan(250); // fair share 400
  });

  it('moves only the keys of a node that leaves, and moves them back when it returns', () => {
    const s = new ConsistentHashStrategy();
    const five = nodes(5);
    const before = assign(s, five);
    const four = five.filter((c) => c.nodeId !== 'n2');
    const after = assign(s, four);
    let moved = 0;
    for (const k of KEYS) {
      if (before.get(k) === 'n2') {
        expect(after.get(k)).not.toBe('n2');
        moved += 1;
      } else {
        expect(after.get(k)).toBe(before.get(k));
      }
    }
    expect(moved).toBeGreaterThan(250);
    expect([...assign(s, five)]).toEqual([...before]);
  });

  it('rebuilds the ring only when the set of nodes changes', () => {
    const s = new ConsistentHashStrategy({ virtualNodes: 160 });
    const list = nodes(3);
    for (let i = 0; i < 20; i++) s.select(list, context({ affinityKey: `k${i}` }));
    s.select([...list].reverse().map((c) => withFields(c, { inFlight: 1 })), context({ affinityKey: 'x' }));
    expect(s.describe()).toEqual({ nodes: 3, points: 480, ringBuilds: 1 });
    s.select(list.slice(1), context({ affinityKey: 'x' }));
    expect(s.describe()).toMatchObject({ nodes: 2, ringBuilds: 2 });
  });

  it('a ring followed through joins and leaves maps every key as a ring built afresh for the same nodes', () => {
    const random = mulberry32(17);
    const universe = nodes(90);
    const following = new ConsistentHashStrategy({ virtualNodes: 32 });
    let members = universe.slice(0, 40);
    for (let change = 1; change <= 12; change++) {
      // A few leave and a few join each time, in registration order as a fleet would change.
      members = members.filter(() => random() > 0.1);
      for (const c of universe) if (!members.includes(c) && random() < 0.05) members.push(c);
      const fresh = new ConsistentHashStrategy({ virtualNodes: 32 });
      const pool = listPool(members, () => true, change);
      for (const k of KEYS.slice(0, 300)) {
        const ctx = context({ affinityKey: k });
        expect(following.selectFrom!(pool, ctx)!.nodeId).toBe(fresh.selectFrom!(pool, ctx)!.nodeId);
      }
      // The candidate-list path follows the same way.
      const few = members.slice(0, 12);
      const freshList = new ConsistentHashStrategy({ virtualNodes: 32 });
      for (const k of KEYS.slice(0, 100)) expect(following.select(few, context({ affinityKey: k }))!.nodeId).toBe(freshList.select(few, context({ affinityKey: k }))!.nodeId);
    }
  });

  it('orders points that collide by node id, however and in whatever order the nodes came', () => {
    // node-89 and node-1698 share points: hash32('node-89#99') = hash32('node-1698#10'), so
    // the key 'node-89#99' lands exactly on a point both own, and the lower id takes it.
    expect(hash32('node-89#99')).toBe(hash32('node-1698#10'));
    const [a, b, c] = [candidate({ nodeId: 'node-89' }), candidate({ nodeId: 'node-1698' }), candidate({ nodeId: 'other' })];
    const key = context({ affinityKey: 'node-89#99' });
    for (const order of [[a, b], [b, a]]) expect(new ConsistentHashStrategy().select(order, key)!.nodeId).toBe('node-1698');
    // Joining one after the other, either way round, on either path.
    for (const [first, second] of [[a, b], [b, a]]) {
      const s = new ConsistentHashStrategy();
      s.select([first!, c], key);
      expect(s.select([first!, c, second!], key)!.nodeId).toBe('node-1698');
      s.selectFrom!(listPool([second!, c], () => true, 1), key);
      expect(s.selectFrom!(listPool([second!, c, first!], () => true, 2), key)!.nodeId).toBe('node-1698');
    }
  });

  it('spills a hot key to the next node on the ring when its node is over the bound', () => {
    const s = new ConsistentHashStrategy();
    const idle = nodes(3);
    const key = 'hot-key';
    const home = s.select(idle, context({ affinityKey: key }))!.nodeId;

    // home has 5 in flight, others 0: bound = ceil(1.25 × 6 / 3) = 3, and 5 + 1 > 3.
    const hot = idle.map((c) => withFields(c, { inFlight: c.nodeId === home ? 5 : 0 }));
    const spill = s.select(hot, context({ affinityKey: key }))!.nodeId;
    expect(spill).not.toBe(home);
    // Always the same next node, not a random one: the ring walk is deterministic.
    for (let seed = 0; seed < 10; seed++) expect(s.select(hot, context({ affinityKey: key, seed }))!.nodeId).toBe(spill);

    // At the bound it stays home: 2 in flight, others 1 each → bound ceil(1.25 × 5 / 3) = 3.
    const warm = idle.map((c) => withFields(c, { inFlight: c.nodeId === home ? 2 : 1 }));
    expect(s.select(warm, context({ affinityKey: key }))!.nodeId).toBe(home);

    // Other keys homed elsewhere are not disturbed by the hot node.
    const other = KEYS.find((k) => s.select(idle, context({ affinityKey: k }))!.nodeId !== home)!;
    expect(s.select(hot, context({ affinityKey: other }))!.nodeId).toBe(s.select(idle, context({ affinityKey: other }))!.nodeId);
  });

  it('keeps every node within the bound under a stream of one key', () => {
    const s = new ConsistentHashStrategy({ loadFactor: 1.25 });
    let list = nodes(4);
    for (let i = 0; i < 40; i++) {
      const picked = s.select(list, context({ affinityKey: 'same' }))!;
      list = list.map((c) => (c.nodeId === picked.nodeId ? withFields(c, { inFlight: c.inFlight + 1 }) : c));
    }
    // 40 calls over 4 nodes, c = 1.25: nobody above ceil(1.25 × 40 / 4) = 13.
    for (const c of list) expect(c.inFlight).toBeLessThanOrEqual(13);
  });

  it('without a key falls back to the fewest in flight', () => {
    const list = [candidate({ nodeId: 'a', inFlight: 2 }), candidate({ nodeId: 'b', inFlight: 0 }), candidate({ nodeId: 'c', inFlight: 1 })];
    const s = new ConsistentHashStrategy();
    expect(s.select(list, context())?.nodeId).toBe('b');
    expect(s.select(list, context({ affinityKey: '' }))?.nodeId).toBe('b');
  });
});
