// The view of a large function's providers that a strategy picks from (CandidatePool):
// random access over the members in registration order, and eligibility asked of one
// member at a time, so that routing a call costs what the strategy looks at, not the size
// of the fleet. One pool per function, reused from call to call.
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import { randomIndex } from '../strategies/candidate-math.js';
import type { Candidate, CandidatePool } from '../strategies/strategy.js';
import { meetsRequirement } from './requirements.js';

/**
 * Probes a sample may spend per candidate asked for, plus a few: enough that a pool where
 * half the members cannot take the call still fills a sample, while a pool where almost
 * none can gives up quickly (the router then filters every provider, as for a small set).
 */
const PROBES_PER_PICK = 2;
const EXTRA_PROBES = 8;

/** The health rules routing applies (see NodeHealthMonitor). */
export interface RoutingHealth {
  /** Hard filter: may this provider get a new call of this function? `now` is clock.now, read once per call. */
  routable(provider: Provider, entry: FunctionEntry, now: number): boolean;
  /** Soft filter: false for providers loaded past the availability threshold. */
  available(provider: Provider): boolean;
}

export class ProviderPool implements CandidatePool {
  private members: readonly Provider[] = [];
  /** A permutation of member indices; sampling shuffles a prefix of it in place. */
  private order = new Uint32Array(0);
  private tried: ReadonlySet<string> | undefined;
  /** clock.now for this call: one reading serves every provider asked about. */
  private now = 0;
  private softFilter = true;
  /** A look-aside pick: backends may take it too. */
  private lookAside = false;
  /** The last sample's members with headroom, and its loaded ones; reused. */
  private readonly picked: Provider[] = [];
  private readonly loaded: Provider[] = [];

  constructor(
    private readonly entry: FunctionEntry,
    private readonly health: RoutingHealth,
  ) {}

  /** Readies the pool for one call: the members as they are now, the nodes it already tried, the soft filter on. */
  begin(tried: ReadonlySet<string> | undefined, now: number, lookAside = false): this {
    const members = this.entry.routingMembers;
    if (members !== this.members) {
      this.members = members;
      this.order = Uint32Array.from(members.keys());
    }
    this.tried = tried;
    this.now = now;
    this.lookAside = lookAside;
    this.softFilter = true;
    return this;
  }

  /** Loaded members count as eligible from now on in this call (none with headroom was found). */
  relax(): void {
    this.softFilter = false;
  }

  get size(): number {
    return this.members.length;
  }

  get version(): number {
    return this.entry.membershipVersion;
  }

  get inFlight(): number {
    return this.entry.inFlight.total;
  }

  at(i: number): Candidate {
    return this.members[i]!;
  }

  eligible(c: Candidate): boolean {
    const p = c as Provider;
    return this.mayTake(p) && (!this.softFilter || this.health.available(p));
  }

  sample(k: number, random: () => number): readonly Candidate[] {
    const picked = this.picked;
    const loaded = this.loaded;
    picked.length = 0;
    loaded.length = 0;
    const wanted = Math.floor(k);
    if (!(wanted >= 1)) return picked;
    const members = this.members;
    const order = this.order;
    const n = members.length;
    const probes = Math.min(n, wanted * PROBES_PER_PICK + EXTRA_PROBES);
    for (let j = 0; j < probes && picked.length < wanted; j++) {
      // A partial Fisher–Yates shuffle: the probes are distinct members, each equally
      // likely, and `order` stays a permutation for the next call without being reset.
      const r = j + randomIndex(n - j, random);
      const m = order[r]!;
      order[r] = order[j]!;
      order[j] = m;
      const p = members[m]!;
      if (!this.mayTake(p)) continue;
      if (this.health.available(p)) picked.push(p);
      else if (loaded.length < wanted) loaded.push(p);
    }
    // The soft filter within the sample: loaded members only when none with headroom was found.
    return picked.length > 0 ? picked : loaded;
  }

  /** The hard filters, as the router applies them to every provider of a small set. */
  private mayTake(p: Provider): boolean {
    if (p.full) return false;
    if (!this.lookAside && p.session.kind !== 'node') return false;
    if (this.tried !== undefined && this.tried.has(p.nodeId)) return false;
    if (!this.health.routable(p, this.entry, this.now)) return false;
    const live = this.entry.liveRequirements;
    for (let i = 0; i < live.length; i++) if (!meetsRequirement(p, live[i]!)) return false;
    return true;
  }
}
