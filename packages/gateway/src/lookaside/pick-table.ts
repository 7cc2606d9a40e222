// Look-aside picks: a provider handed to a client for a call. A pick holds one call slot
// of its provider (counted in the provider's in-flight figure, which capacity, the
// strategies and the caller's own limits read) from GetBackend until the client reports
// the call's outcome, or the pick lapses. A client may keep a pick for more calls, one at
// a time, until its TTL: those run without a slot here (the provider's own reports count
// them), and their outcomes still reach the strategy instance that made the pick. Outcomes
// go where a relayed call's go: the provider's history, that strategy instance (with the
// figures it decided on), and outlier detection.
import {
  InvalidArgument,
  MAX_OPEN_PICKS,
  NodeNotFound,
  Overloaded,
  PermissionDenied,
  quote,
  type EasyRemoteError,
  type Outcome,
  type Principal,
  type PrincipalLimits,
} from '@easyremote/protocol';
import type { Clock, RandomSource, TimerHandle } from '../clock.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Registry } from '../registry/registry.js';
import type { Candidate, SelectContext, Strategy } from '../strategies/strategy.js';
import { MAX_TIMER_MS } from '../config/expected.js';

export interface OpenPick {
  readonly id: number;
  readonly provider: Provider;
  readonly entry: FunctionEntry;
  /** The strategy instance that chose the provider, and what it chose on. */
  readonly strategy: Strategy;
  readonly context: SelectContext;
  readonly snapshot: Candidate | undefined;
  readonly principal: Principal;
  /** Forgets the pick (and releases its slot) when it lapses, whatever the client says. */
  timer: TimerHandle | undefined;
  /** Still holds its call slot (until the first outcome). */
  holding: boolean;
}

/** What the picks of one provider came to, for operators. */
export interface PickTally {
  picks: number;
  outcomes: number;
  failures: number;
  open: number;
}

export interface PickTableParts {
  clock: Clock;
  random: RandomSource;
  detector: OutlierDetector;
  /** Each principal's limits: a pick takes a call slot of its principal, as a relayed call does. */
  limits: PrincipalLimits;
  /** A slot freed up: calls waiting at the gateway for this function may move. */
  freed(entry: FunctionEntry): void;
  /** How long after asking a client may start calls on a pick, ms. */
  pickTtlMs: number;
  /** The time limit of functions that set none, ms (a call started on a pick may run that long). */
  defaultTimeoutMs: number;
  /** Who is registered now (the registry's sessions): figures of those gone are dropped. */
  sessions: ReadonlyMap<string, unknown>;
}

/** Figures of departed providers kept before they are pruned, beyond twice those registered. */
const TALLY_SLACK = 64;

export class PickTable {
  private nextId = 1;
  /** Picks holding a slot, and kept ones (until they lapse). */
  private readonly open = new Map<number, OpenPick>();
  private holding = 0;
  /** Per provider node id, since the gateway started (or the id was last seen). */
  private readonly tallies = new Map<string, PickTally>();
  picksTotal = 0;
  outcomesTotal = 0;

  constructor(private readonly parts: PickTableParts) {}

  /** Picks holding a call slot. */
  get size(): number {
    return this.holding;
  }

  tally(nodeId: string): PickTally {
    return this.tallies.get(nodeId) ?? { picks: 0, outcomes: 0, failures: 0, open: 0 };
  }

  /**
   * Takes a call slot of the provider the strategy chose, for `principal`. A call started
   * on the pick before its TTL may run for the function's time limit, so the slot is held
   * at most that long after the TTL.
   */
  take(provider: Provider, entry: FunctionEntry, strategy: Strategy, context: SelectContext, principal: Principal): OpenPick | EasyRemoteError {
    const { clock, detector, limits } = this.parts;
    if (this.open.size >= MAX_OPEN_PICKS) {
      return new Overloaded(`this gateway has ${MAX_OPEN_PICKS} picks open`, { retryAfterMs: 200, limit: { name: 'max_open_picks', limit: MAX_OPEN_PICKS, actual: MAX_OPEN_PICKS + 1 } });
    }
    const limited = limits.acquire(principal);
    if (limited) return limited;
    const nodeId = provider.nodeId;
    provider.inFlight++;
    provider.session.inFlight++;
    // A pick of a half-open pair is its probe, as a relayed call would be.
    if (entry.config.healthCheck.enabled && detector.state(nodeId, entry.name) === 'half_open') detector.onDispatch(nodeId, entry.name);
    // Within a timer's range: a longer delay would fire at once.
    const lifetime = Math.min(MAX_TIMER_MS, this.parts.pickTtlMs + (entry.config.timeoutMs > 0 ? entry.config.timeoutMs : this.parts.defaultTimeoutMs));
    const pick: OpenPick = { id: this.nextId++, provider, entry, strategy, context, snapshot: strategy.observe ? provider.snapshot() : undefined, principal, timer: undefined, holding: true };
    pick.timer = clock.setTimeout(() => this.forget(pick), lifetime);
    this.open.set(pick.id, pick);
    this.holding++;
    if (this.tallies.size > 2 * this.parts.sessions.size + TALLY_SLACK) this.pruneTallies();
    const t = this.tallyOf(nodeId);
    t.picks++;
    t.open++;
    this.picksTotal++;
    return pick;
  }

  /**
   * A client's report on one call. With a pick id still open, the outcome goes to the
   * strategy instance that made the pick and the pick is released unless kept; without
   * one (a plain client, or a pick that lapsed) it goes to the function's configured
   * strategy with the provider's figures as they are now.
   */
  outcome(o: Outcome, principal: Principal, registry: Registry): void {
    if (!(Number.isFinite(o.latencyMs) && o.latencyMs >= 0)) throw new InvalidArgument(`latency_ms must be a finite number >= 0, got ${o.latencyMs}`);
    const pick = o.pickId > 0 ? this.open.get(o.pickId) : undefined;
    if (pick !== undefined) {
      if (pick.provider.nodeId !== o.backendId || pick.entry.name !== o.service) {
        throw new InvalidArgument(`pick ${o.pickId} is of ${quote(pick.provider.nodeId)} for ${quote(pick.entry.name)}, not of ${quote(o.backendId)} for ${quote(o.service)}`);
      }
      if (pick.principal !== principal) throw new PermissionDenied(`${principal.name} may not report on pick ${o.pickId}: another principal asked for it`);
      if (!o.discard) this.learn(pick.provider, pick.entry, o, pick.strategy, pick.context, pick.snapshot);
      else if (pick.holding && pick.entry.config.healthCheck.enabled) this.parts.detector.releaseProbe(pick.provider.nodeId, pick.entry.name);
      this.freeSlot(pick);
      if (o.discard || !o.keep) this.forget(pick);
      return;
    }
    if (!principal.mayCall(o.service)) throw new PermissionDenied(`${principal.name} may not call ${quote(o.service)}`);
    const entry = registry.functions.get(o.service);
    const provider = entry?.providers.get(o.backendId);
    if (entry === undefined || provider === undefined) throw new NodeNotFound(`no backend or node ${quote(o.backendId)} serves ${quote(o.service)}`);
    if (o.discard) return;
    const strategy = entry.strategy(entry.config.strategy);
    const { clock, random } = this.parts;
    const context: SelectContext = { functionName: entry.name, random, now: () => clock.now(), epochMs: () => clock.epochMs(), complexity: 1, requestBytes: 0, preferences: {} };
    this.learn(provider, entry, o, strategy, context, strategy.observe ? provider.snapshot() : undefined);
  }

  /** Every pick ends (the gateway stops). */
  clear(): void {
    for (const pick of [...this.open.values()]) this.forget(pick);
  }

  /** The pick is over: its slot (if it still holds one) goes back, and later outcomes naming it teach as plain ones. */
  private forget(pick: OpenPick): void {
    this.parts.clock.clearTimeout(pick.timer);
    this.freeSlot(pick);
    this.open.delete(pick.id);
  }

  /** The figures of providers no longer registered go (ids come and go without bound). */
  private pruneTallies(): void {
    for (const [nodeId, t] of this.tallies) if (t.open === 0 && !this.parts.sessions.has(nodeId)) this.tallies.delete(nodeId);
  }

  private learn(provider: Provider, entry: FunctionEntry, o: Outcome, strategy: Strategy, context: SelectContext, snapshot: Candidate | undefined): void {
    provider.recordOutcome(o.ok, o.latencyMs, 0);
    if (snapshot !== undefined) strategy.observe?.({ nodeId: provider.nodeId, ok: o.ok, latencyMs: o.latencyMs, execMs: 0, candidate: snapshot, context });
    if (entry.config.healthCheck.enabled) this.parts.detector.record(provider.nodeId, entry.name, o.ok);
    const t = this.tallyOf(provider.nodeId);
    t.outcomes++;
    if (!o.ok) t.failures++;
    this.outcomesTotal++;
  }

  /** The pick's call slot goes back (once). */
  private freeSlot(pick: OpenPick): void {
    if (!pick.holding) return;
    pick.holding = false;
    this.holding--;
    pick.provider.inFlight--;
    pick.provider.session.inFlight--;
    this.parts.limits.release(pick.principal);
    const t = this.tallies.get(pick.provider.nodeId);
    if (t !== undefined) t.open--;
    this.parts.freed(pick.entry);
  }

  private tallyOf(nodeId: string): PickTally {
    let t = this.tallies.get(nodeId);
    if (t === undefined) this.tallies.set(nodeId, (t = { picks: 0, outcomes: 0, failures: 0, open: 0 }));
    return t;
  }
}
