import { fewestInFlight, inFlightOf, nonNegative } from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, CandidatePool, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Points per node on the ring: enough that 5 nodes get shares within a few % of equal. */
export const DEFAULT_VIRTUAL_NODES = 128;
/** Bounded-load factor c: no node takes more than c × its fair share of calls in flight. */
export const DEFAULT_LOAD_FACTOR = 1.25;
/** More points buy nothing measurable and cost memory per node; the cap bounds the ring. */
const MAX_VIRTUAL_NODES = 1_000;
/** Members a packed sort key can name: point × 2^20 + member stays exact in a double (< 2^53). */
const PACKED_MEMBERS = 2 ** 20;
/** Departed nodes' cached points are dropped once the cache holds this many more than the ring. */
const POINT_CACHE_SLACK = 64;
/** Candidates sampled from a large pool for a call without a key (fewest in flight among them). */
const KEYLESS_SAMPLE = 16;

export const CONSISTENT_HASH_OPTIONS = {
  virtualNodes: { type: 'number', integer: true, min: 1, max: MAX_VIRTUAL_NODES },
  /** Below 1 the bound could exclude every node; 1 means "exactly the fair share". */
  loadFactor: { type: 'number', min: 1 },
} as const;

export type ConsistentHashOptions = OptionsOf<typeof CONSISTENT_HASH_OPTIONS>;

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
  /** Member index → node id, and back. */
  readonly ids: readonly string[];
  readonly members: ReadonlyMap<string, number>;
  /** Member indices run from 0 to size − 1 (size = members.size unless an id came twice). */
  readonly size: number;
  /** Sorted ascending; owners[i] (a member index) owns points[i]. */
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
  /** Per member: the candidate object of the current selection, and stamps marking it filled / visited. */
  readonly current: Array<Candidate | undefined>;
  readonly filled: Float64Array;
  readonly visited: Float64Array;
}

/**
 * Consistent hashing on the call's affinity key (nginx `hash $http_machineid`, the
 * classic IP-hash pattern), with bounded loads (Mirrokni et al., as in HAProxy's
 * `hash-balance-factor`).
 *
 * Each node owns `virtualNodes` points on a 32-bit ring; a key goes to the owner of the
 * first point at or after its hash. When a node leaves, only its points disappear, so only
 * the keys it owned move. A node is passed over while taking the call would leave it with
 * more than ceil(c × (total in flight + 1) / n) calls, and the walk continues clockwise, so a
 * hot key spills onto the same next node each time instead of melting its home node.
 * Calls without a key go to the node with fewest in flight.
 *
 * From a large pool the ring is built over the pool's members and rebuilt only when they
 * change (the pool's version says so, without comparing every member). Members that cannot
 * take the call are passed over on the walk, which lands a key where a ring of only the
 * eligible members would; the bound takes the calls in flight over every member, which
 * the pool keeps as a running total. A call without a key goes to the fewest in flight
 * among a random sample.
 */
export class ConsistentHashStrategy implements Strategy {
  readonly name = 'consistent_hash';
  private readonly virtualNodes: number;
  private readonly loadFactor: number;
  private ring: Ring | undefined;
  /** The pool version the ring was built for; undefined when it was built from a candidate list. */
  private ringVersion: number | undefined;
  private ringBuilds = 0;
  /** Node id → its points on the ring, so a rebuild hashes only the nodes that joined. */
  private readonly pointCache = new Map<string, Uint32Array>();
  /** Bumped every selection: a stamp equal to it means "this selection". */
  private stamp = 0;

  constructor(options: ConsistentHashOptions = {}) {
    const virtualNodes = Math.floor(options.virtualNodes ?? DEFAULT_VIRTUAL_NODES);
    this.virtualNodes = virtualNodes >= 1 ? Math.min(virtualNodes, MAX_VIRTUAL_NODES) : 1;
    const loadFactor = options.loadFactor ?? DEFAULT_LOAD_FACTOR;
    this.loadFactor = loadFactor >= 1 && loadFactor < Infinity ? loadFactor : DEFAULT_LOAD_FACTOR;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const key = context.affinityKey;
    if (key === undefined || key === '') return fewestInFlight(candidates, context.random);

    const ring = this.ringFor(candidates);
    const stamp = this.stamp;
    const members = ring.members.size;
    let total = 0;
    for (const c of candidates) total += inFlightOf(c);
    const bound = Math.ceil((this.loadFactor * (total + 1)) / members);

    const points = ring.points.length;
    const start = firstPointAtOrAfter(ring.points, hash32(key));
    let visited = 0;
    for (let step = 0; step < points && visited < members; step++) {
      const owner = ring.owners[(start + step) % points]!;
      if (ring.visited[owner] === stamp) continue;
      ring.visited[owner] = stamp;
      visited += 1;
      const c = ring.current[owner]!;
      if (inFlightOf(c) + 1 <= bound) return c;
    }
    // Unreachable while the bound is at least the mean; kept so a bug degrades, not fails.
    return fewestInFlight(candidates, context.random);
  }

  selectFrom(pool: CandidatePool, context: SelectContext): Candidate | undefined {
    if (pool.size === 0) return undefined;
    const key = context.affinityKey;
    if (key === undefined || key === '') return fewestInFlight(pool.sample(KEYLESS_SAMPLE, context.random), context.random);

    const ring = this.ringForPool(pool);
    const stamp = ++this.stamp;
    const members = ring.size;
    const bound = Math.ceil((this.loadFactor * (nonNegative(pool.inFlight) + 1)) / members);
    const points = ring.points.length;
    const start = firstPointAtOrAfter(ring.points, hash32(key));
    let visited = 0;
    let lightest: Candidate | undefined;
    for (let step = 0; step < points && visited < members; step++) {
      const owner = ring.owners[(start + step) % points]!;
      if (ring.visited[owner] === stamp) continue;
      ring.visited[owner] = stamp;
      visited += 1;
      const c = pool.at(owner);
      if (!pool.eligible(c)) continue;
      if (inFlightOf(c) + 1 <= bound) return c;
      if (lightest === undefined || inFlightOf(c) < inFlightOf(lightest)) lightest = c;
    }
    // Every eligible member is over the bound: possible here, since the bound counts calls
    // on members that cannot take this one; the least loaded of them is the natural spill.
    return lightest;
  }

  /** The ring over the pool's members (member index = pool index), rebuilt when they change. */
  private ringForPool(pool: CandidatePool): Ring {
    const cached = this.ring;
    if (cached !== undefined && this.ringVersion === pool.version && cached.size === pool.size) return cached;
    const ids: string[] = [];
    for (let i = 0; i < pool.size; i++) ids.push(pool.at(i).nodeId);
    const ring = this.ringOver(ids);
    this.ringVersion = pool.version;
    return ring;
  }

  /**
   * Reuses the ring until the set of node ids changes (order does not matter), and maps
   * each member to its candidate object for this selection on the way.
   */
  private ringFor(candidates: readonly Candidate[]): Ring {
    const stamp = ++this.stamp;
    const cached = this.ring;
    if (cached !== undefined && this.ringVersion === undefined && this.fill(cached, candidates, stamp)) return cached;
    const ring = this.ringOver([...new Set(candidates.map((c) => c.nodeId))]);
    this.ringVersion = undefined;
    this.fill(ring, candidates, stamp);
    return ring;
  }

  /**
   * The ring over these ids, member m being ids[m]. From the previous ring, the points of
   * nodes that left are dropped and those of nodes that joined are merged in, in time
   * linear in the ring's size; only the joiners' points are sorted. Each node's points are
   * hashed once while it is a member. So a ring of a thousand nodes follows a join or a
   * leave in about a millisecond, where sorting all its points again takes tens.
   */
  private ringOver(ids: readonly string[]): Ring {
    const n = ids.length;
    const members = new Map<string, number>();
    for (let m = 0; m < n; m++) members.set(ids[m]!, m);
    const previous = this.ring;
    const distinct = members.size === n && previous !== undefined && previous.members.size === previous.size;
    const { points, owners } = distinct ? this.merged(previous, ids, members) : this.sortedPoints(ids, Array.from(ids.keys()));
    if (this.pointCache.size > 2 * n + POINT_CACHE_SLACK) {
      for (const id of this.pointCache.keys()) if (!members.has(id)) this.pointCache.delete(id);
    }
    this.ringBuilds += 1;
    const ring: Ring = {
      ids,
      members,
      size: n,
      points,
      owners,
      current: new Array<Candidate | undefined>(n).fill(undefined),
      filled: new Float64Array(n),
      visited: new Float64Array(n),
    };
    this.ring = ring;
    return ring;
  }

  /** The previous ring's points for the members that stay, merged with the joiners'. */
  private merged(previous: Ring, ids: readonly string[], members: ReadonlyMap<string, number>): { points: Uint32Array; owners: Uint32Array } {
    const renumber = new Int32Array(previous.size);
    for (let m = 0; m < previous.size; m++) renumber[m] = members.get(previous.ids[m]!) ?? -1;
    const joiners: number[] = [];
    for (let m = 0; m < ids.length; m++) if (!previous.members.has(ids[m]!)) joiners.push(m);
    const added = this.sortedPoints(ids, joiners);
    const total = ids.length * this.virtualNodes;
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    const old = previous.points;
    let i = 0;
    let j = 0;
    for (let k = 0; k < total; k++) {
      while (i < old.length && renumber[previous.owners[i]!]! < 0) i++;
      const fromOld =
        j >= added.points.length ||
        (i < old.length && (old[i]! < added.points[j]! || (old[i] === added.points[j] && ids[renumber[previous.owners[i]!]!]! <= ids[added.owners[j]!]!)));
      if (fromOld) {
        points[k] = old[i]!;
        owners[k] = renumber[previous.owners[i]!]!;
        i++;
      } else {
        points[k] = added.points[j]!;
        owners[k] = added.owners[j]!;
        j++;
      }
    }
    return { points, owners };
  }

  /**
   * The points of the given members, sorted, collisions ordered by id. Sorted as numbers,
   * each packed with its owner (point × 2^20 + member), which is several times faster than
   * sorting objects.
   */
  private sortedPoints(ids: readonly string[], chosen: readonly number[]): { points: Uint32Array; owners: Uint32Array } {
    const perNode = this.virtualNodes;
    const total = chosen.length * perNode;
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    if (ids.length < PACKED_MEMBERS) {
      const keys = new Float64Array(total);
      let k = 0;
      for (const m of chosen) {
        const own = this.pointsOf(ids[m]!);
        for (let v = 0; v < perNode; v++) keys[k++] = own[v]! * PACKED_MEMBERS + m;
      }
      keys.sort();
      for (let i = 0; i < total; i++) {
        const point = Math.floor(keys[i]! / PACKED_MEMBERS);
        points[i] = point;
        owners[i] = keys[i]! - point * PACKED_MEMBERS;
      }
    } else {
      const entries: Array<{ point: number; owner: number }> = [];
      for (const m of chosen) for (const point of this.pointsOf(ids[m]!)) entries.push({ point, owner: m });
      entries.sort((a, b) => a.point - b.point || a.owner - b.owner);
      entries.forEach((e, i) => {
        points[i] = e.point;
        owners[i] = e.owner;
      });
    }
    // Collisions are ordered by id so the ring does not depend on the order of the members.
    for (let i = 1; i < total; i++) {
      if (points[i] !== points[i - 1]) continue;
      let end = i + 1;
      while (end < total && points[end] === points[i]) end++;
      const run = Array.from(owners.subarray(i - 1, end)).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
      owners.set(run, i - 1);
      i = end - 1;
    }
    return { points, owners };
  }

  /** A node's points on the ring, hashed once per node. */
  private pointsOf(id: string): Uint32Array {
    let own = this.pointCache.get(id);
    if (own === undefined) {
      own = new Uint32Array(this.virtualNodes);
      for (let v = 0; v < own.length; v++) own[v] = hash32(`${id}#${v}`);
      this.pointCache.set(id, own);
    }
    return own;
  }

  /** Points each member at its candidate; false when the ids are not exactly the ring's members. */
  private fill(ring: Ring, candidates: readonly Candidate[], stamp: number): boolean {
    let distinct = 0;
    for (const c of candidates) {
      const m = ring.members.get(c.nodeId);
      if (m === undefined) return false;
      // With the same id twice, the later snapshot is used, as a map by id would.
      if (ring.filled[m] !== stamp) {
        ring.filled[m] = stamp;
        distinct += 1;
      }
      ring.current[m] = c;
    }
    return distinct === ring.members.size;
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

export function setup(register: RegisterStrategy): void {
  register({ name: 'consistent_hash', schema: CONSISTENT_HASH_OPTIONS, create: (options) => new ConsistentHashStrategy(options) });
}
