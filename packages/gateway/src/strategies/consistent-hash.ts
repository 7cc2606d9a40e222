import { LeastConnectionsStrategy } from './least-connections.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** Points per node on the ring: enough that 5 nodes get shares within a few % of equal. */
export const DEFAULT_VIRTUAL_NODES = 128;
/** Bounded-load factor c: no node takes more than c × its fair share of calls in flight. */
export const DEFAULT_LOAD_FACTOR = 1.25;

export interface ConsistentHashOptions {
  virtualNodes?: number;
  loadFactor?: number;
}

/**
 * 32-bit FNV-1a over the string's UTF-16 code units, then the murmur3 finaliser: FNV-1a
 * alone leaves near-identical inputs ("gpu-1#7", "gpu-1#8") near each other on the ring,
 * and the finaliser's avalanche spreads them out. Not for anything adversarial.
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

interface Ring {
  readonly members: ReadonlySet<string>;
  /** Sorted ascending; owners[i] owns points[i]. */
  readonly points: Uint32Array;
  readonly owners: readonly string[];
}

/**
 * Consistent hashing on the call's affinity key (seeds 003/004: nginx `hash $http_machineid`),
 * with bounded loads (Mirrokni et al., as in HAProxy's `hash-balance-factor`).
 *
 * Each node owns `virtualNodes` points on a 32-bit ring; a key goes to the owner of the
 * first point at or after its hash. When a node leaves, only its points disappear, so only
 * the keys it owned move. A node is passed over while taking the call would leave it with
 * more than ceil(c × (total in flight + 1) / n) calls, and the walk continues clockwise, so a
 * hot key spills onto the same next node each time instead of melting its home node.
 * Calls without a key go to the node with fewest in flight.
 */
export class ConsistentHashStrategy implements Strategy {
  readonly name = 'consistent_hash';
  private readonly virtualNodes: number;
  private readonly loadFactor: number;
  private readonly noKey = new LeastConnectionsStrategy();
  private ring: Ring | undefined;
  private ringBuilds = 0;

  constructor(options: ConsistentHashOptions = {}) {
    this.virtualNodes = Math.max(1, Math.floor(options.virtualNodes ?? DEFAULT_VIRTUAL_NODES));
    // Below 1 the bound could exclude every node; 1 means "exactly the fair share".
    this.loadFactor = Math.max(1, options.loadFactor ?? DEFAULT_LOAD_FACTOR);
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const key = context.affinityKey;
    if (key === undefined || key === '') return this.noKey.select(candidates, context);

    const ring = this.ringFor(candidates);
    const byId = new Map(candidates.map((c) => [c.nodeId, c]));
    let total = 0;
    for (const c of candidates) total += c.inFlight;
    const bound = Math.ceil((this.loadFactor * (total + 1)) / candidates.length);

    const start = firstPointAtOrAfter(ring.points, hash32(key));
    const seen = new Set<string>();
    for (let step = 0; step < ring.points.length && seen.size < byId.size; step++) {
      const owner = ring.owners[(start + step) % ring.points.length]!;
      if (seen.has(owner)) continue;
      seen.add(owner);
      const c = byId.get(owner)!;
      if (c.inFlight + 1 <= bound) return c;
    }
    // Unreachable while the bound is at least the mean; kept so a bug degrades, not fails.
    return this.noKey.select(candidates, context);
  }

  /** Reuses the ring until the set of node ids changes (order does not matter). */
  private ringFor(candidates: readonly Candidate[]): Ring {
    const cached = this.ring;
    if (
      cached !== undefined &&
      cached.members.size === candidates.length &&
      candidates.every((c) => cached.members.has(c.nodeId))
    ) {
      return cached;
    }
    const entries: Array<{ point: number; owner: string }> = [];
    for (const c of candidates) {
      for (let v = 0; v < this.virtualNodes; v++) entries.push({ point: hash32(`${c.nodeId}#${v}`), owner: c.nodeId });
    }
    // Collisions are ordered by id so the ring does not depend on the candidates' order.
    entries.sort((a, b) => a.point - b.point || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0));
    this.ringBuilds += 1;
    this.ring = {
      members: new Set(candidates.map((c) => c.nodeId)),
      points: Uint32Array.from(entries, (e) => e.point),
      owners: entries.map((e) => e.owner),
    };
    return this.ring;
  }

  /** Ring size and how often it was rebuilt (each rebuild means the node set changed). */
  describe(): Record<string, unknown> {
    return { nodes: this.ring?.members.size ?? 0, points: this.ring?.points.length ?? 0, ringBuilds: this.ringBuilds };
  }
}

/** Index of the first point >= h, wrapping to 0 past the end. */
function firstPointAtOrAfter(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}
