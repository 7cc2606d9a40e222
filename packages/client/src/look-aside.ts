// Look-aside mode: the client asks the gateway's LoadBalancer service which provider
// should take a call, calls that provider directly (its own address, the same
// client-facing service the gateway exposes), and reports how the call went. The gateway
// stays off the data path. Calls the client cannot send directly go through the gateway
// as in proxy mode: a provider without a direct address, one whose address this client
// could not reach (remembered per node for a while), a call the node refused before
// running it (OVERLOADED, FUNCTION_NOT_FOUND: the gateway tries another provider), and
// every call while no gateway has a LoadBalancer service.
//
// With several gateways, picks are asked of the one a call would be sent to (the client's
// gateway set chooses, by health and load), and asked again of another when that one
// cannot be reached; a pick's outcome goes back to the gateway that gave it (its call
// slot is held there). Calls through a gateway use the set, with its failover.
//
// Picks are asked for in batches (the calls of one turn share one GetBackends round trip)
// and kept for the pick's TTL: a pick whose call finished serves the next call of the
// same service and routing options, one call at a time, so a stream of small calls does
// not pay a round trip to the gateway each. A pick holds a call slot at the gateway only
// until its first outcome is reported: an idle kept pick holds nothing.
import * as grpc from '@grpc/grpc-js';
import {
  AUTH_METADATA_KEY,
  Cancelled,
  DeadlineExceeded,
  EasyRemoteError,
  LoadBalancerService,
  MAX_PICKS_PER_REQUEST,
  NodeLost,
  type BackendInfo,
  type BackendPicks,
  type BackendRequest,
  type CallOptions as WireCallOptions,
  type Outcome,
} from '@easyremote/protocol';
import type { CallRequest } from './failover-call.js';
import type { GatewayConnection } from './gateway-connection.js';
import type { CallHandle, CallListener } from './session.js';

/** How long an address this client could not reach is remembered, unless configured (ms). */
export const DEFAULT_UNREACHABLE_MS = 60_000;
/** How long a first connection to a direct address may take before it counts as unreachable (ms). */
export const DEFAULT_DIRECT_CONNECT_TIMEOUT_MS = 1_000;
/** How long a call without a deadline waits for a provider with room before it gives up (ms). */
export const DEFAULT_PICK_WAIT_MS = 10_000;

/** Errors a provider raises before its handler ran, or that say nothing about it: nothing is learned from them. */
const NOT_THE_PROVIDERS = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'CANCELLED', 'OVERLOADED', 'FUNCTION_NOT_FOUND', 'PERMISSION_DENIED', 'UNAUTHENTICATED', 'RATE_LIMITED']);
/** A node's refusals that mean its handler never ran: the gateway may send the call to another provider. */
const NOT_STARTED = new Set(['OVERLOADED', 'FUNCTION_NOT_FOUND']);

export interface LookAsideOptions {
  /** How long a node whose direct address could not be reached gets its calls through the gateway, ms (default 60 s). */
  unreachableMs?: number;
  /** How long a first connection to a direct address may take, ms (default 1 s). */
  connectTimeoutMs?: number;
  /** How long a call with no deadline waits for a provider with room, ms (default 10 s). */
  pickWaitMs?: number;
  /** Shown to operators as BackendRequest.client_id. */
  clientId?: string;
}

/** A direct connection: how to send one call to a provider's address. */
export interface DirectTransport {
  start(request: CallRequest, listener: CallListener): CallHandle;
  /** Resolves once connected; rejects when it cannot connect within `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  close(): void;
}

/** What the router needs of the client's gateways (its GatewaySet). */
export interface PickGateways {
  readonly size: number;
  /** Runs `f` once the gateways are known (a name standing for several waits for its lookup). */
  whenKnown(f: () => void): void;
  /** The gateway to ask next, as a call's gateway is chosen, preferring those not in `tried`. */
  pick(tried: readonly GatewayConnection[]): GatewayConnection;
}

export interface LookAsideParts {
  /** Where picks are asked for (each gateway's channel is shared with its LoadBalancer client). */
  gateways: PickGateways;
  token: string | undefined;
  /** A call through the gateways (proxy mode). */
  viaGateway(request: CallRequest, listener: CallListener): CallHandle;
  /** A connection to a provider's direct address (host:port). */
  direct(address: string): DirectTransport;
  options: LookAsideOptions;
}

type LoadBalancerClient = grpc.Client & {
  getBackends(req: BackendRequest, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, reply?: BackendPicks) => void): grpc.ClientUnaryCall;
  reportOutcome(req: Outcome, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
};
const LoadBalancerClient = grpc.makeGenericClientConstructor(LoadBalancerService, 'LoadBalancer');

/** A pick held by this client: a provider and, when it took a call slot, the pick's id and when it lapses. */
interface HeldPick {
  readonly info: BackendInfo;
  /** The gateway that gave it: its outcome goes there. */
  readonly gateway: GatewayConnection;
  readonly service: string;
  /** Date.now() after which no call may start on it (measured from asking, so never later than the gateway's). */
  readonly usableUntil: number;
  idleTimer?: NodeJS.Timeout;
}

/** A call waiting for a pick. */
interface Waiter {
  readonly request: CallRequest;
  settle(pick: HeldPick | EasyRemoteError | 'gateway'): void;
  /** Set when the call stopped waiting (cancelled, deadline): a pick that arrives is released. */
  gone: boolean;
  /** Date.now() after which it stops asking again (OVERLOADED, no provider yet). */
  readonly giveUpAt: number;
}

/** The calls of one service and routing options: their waiters and their idle picks. */
interface PickPool {
  readonly key: string;
  readonly request: BackendRequest;
  waiting: Waiter[];
  idle: HeldPick[];
  scheduled: boolean;
}

export class LookAsideRouter {
  /** Each gateway's LoadBalancer client, on its channel. */
  private readonly lbs = new Map<GatewayConnection, LoadBalancerClient>();
  private readonly pools = new Map<string, PickPool>();
  private readonly connections = new Map<string, DirectTransport>();
  /** Node id → Date.now() until which its direct address counts as unreachable. */
  private readonly unreachable = new Map<string, number>();
  /** Gateways without a LoadBalancer service: picks are asked of the others. */
  private readonly withoutLoadBalancer: GatewayConnection[] = [];
  /** No gateway has a LoadBalancer service: every call goes through the gateways. */
  private unsupported = false;
  private closed = false;
  private readonly unreachableMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pickWaitMs: number;

  constructor(private readonly parts: LookAsideParts) {
    const o = parts.options;
    for (const key of ['unreachableMs', 'connectTimeoutMs', 'pickWaitMs'] as const) {
      const v = o[key];
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new TypeError(`lookAside.${key} must be a number >= 0, got ${String(v)}`);
    }
    this.unreachableMs = o.unreachableMs ?? DEFAULT_UNREACHABLE_MS;
    this.connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_DIRECT_CONNECT_TIMEOUT_MS;
    this.pickWaitMs = o.pickWaitMs ?? DEFAULT_PICK_WAIT_MS;
  }

  /** Sends one call: to a provider directly when it can, else through the gateway. */
  start(request: CallRequest, listener: CallListener): CallHandle {
    if (this.unsupported) return this.parts.viaGateway(request, listener);
    const call = new LookAsideCall(request, listener);
    if (request.signal?.aborted) {
      call.fail(new Cancelled(`call to ${request.function} aborted before it started`, { cause: request.signal.reason }));
      return call;
    }
    this.acquire(call);
    return call;
  }

  close(): void {
    this.closed = true;
    for (const pool of this.pools.values()) {
      for (const pick of pool.idle) clearTimeout(pick.idleTimer);
      pool.idle = [];
    }
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
    // Not close(): the channels are the gateway connections', closed with them.
    this.lbs.clear();
  }

  /** The LoadBalancer client on a gateway's channel. */
  private lb(gateway: GatewayConnection): LoadBalancerClient {
    let lb = this.lbs.get(gateway);
    if (lb === undefined) this.lbs.set(gateway, (lb = new LoadBalancerClient('unused', grpc.credentials.createInsecure(), { channelOverride: gateway.channel }) as unknown as LoadBalancerClient));
    return lb;
  }

  // ---- picks --------------------------------------------------------------------------

  private acquire(call: LookAsideCall): void {
    const { request } = call;
    const pool = this.poolOf(request);
    const now = Date.now();
    // The most recently used idle pick first: the others may lapse and give their slots back.
    while (pool.idle.length > 0) {
      const pick = pool.idle.pop()!;
      clearTimeout(pick.idleTimer);
      if (now < pick.usableUntil) return this.send(call, pick);
    }
    const deadline = Number.isFinite(request.deadline) ? request.deadline : now + this.pickWaitMs;
    const waiter: Waiter = {
      request,
      gone: false,
      giveUpAt: deadline,
      settle: (pick) => {
        clearTimeout(timer);
        call.detachWait();
        if (pick === 'gateway') call.startWith(this.parts.viaGateway(request, call.listenerFor(undefined, this)));
        else if (pick instanceof EasyRemoteError) call.fail(pick);
        else this.send(call, pick);
      },
    };
    const leave = (err: EasyRemoteError | undefined) => {
      if (waiter.gone) return;
      waiter.gone = true;
      clearTimeout(timer);
      if (err !== undefined) call.fail(err);
    };
    const timer = Number.isFinite(request.deadline) ? setTimeout(() => leave(new DeadlineExceeded(`deadline of ${request.function} passed before dispatch`)), Math.max(0, request.deadline - now)) : undefined;
    timer?.unref();
    call.onWaitCancelled((err) => leave(err));
    pool.waiting.push(waiter);
    this.schedule(pool);
  }

  /** Asks once per turn for every call of the pool waiting then (in batches of MAX_PICKS_PER_REQUEST). */
  private schedule(pool: PickPool, delayMs = 0): void {
    if (pool.scheduled) return;
    pool.scheduled = true;
    const ask = () => {
      pool.scheduled = false;
      pool.waiting = pool.waiting.filter((w) => !w.gone);
      while (pool.waiting.length > 0) this.ask(pool, pool.waiting.splice(0, MAX_PICKS_PER_REQUEST), []);
    };
    if (delayMs > 0) setTimeout(ask, delayMs).unref();
    else setImmediate(ask);
  }

  /** One GetBackends for `waiters`, of a gateway not in `tried` (those that could not be reached for them). */
  private ask(pool: PickPool, waiters: Waiter[], tried: GatewayConnection[]): void {
    this.parts.gateways.whenKnown(() => {
      if (this.closed) return;
      const gateway = this.parts.gateways.pick([...tried, ...this.withoutLoadBalancer]);
      const askedAt = Date.now();
      const metadata = new grpc.Metadata();
      if (this.parts.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.parts.token}`);
      this.lb(gateway).getBackends({ ...pool.request, count: waiters.length }, metadata, (err, reply) => {
        if (this.closed) return;
        if (err !== null) return this.refused(pool, waiters, err, gateway, tried);
        gateway.health.succeeded();
        this.picked(pool, waiters, reply?.picks ?? [], gateway, askedAt);
      });
    });
  }

  private picked(pool: PickPool, waiters: Waiter[], picks: readonly BackendInfo[], gateway: GatewayConnection, askedAt: number): void {
    let i = 0;
    for (const info of picks) {
      const pick: HeldPick = { info, gateway, service: pool.request.service, usableUntil: askedAt + info.pickTtlMs };
      // Waiters that left meanwhile give their picks back.
      while (i < waiters.length && waiters[i]!.gone) i++;
      const w = waiters[i++];
      if (w === undefined) this.release(pick);
      else w.settle(pick);
    }
    // Fewer picks than asked for (the gateway ran out of room part way): the rest ask again.
    const rest = waiters.slice(i).filter((w) => !w.gone);
    if (rest.length > 0) {
      pool.waiting.push(...rest);
      this.schedule(pool);
    }
    this.dropIfEmpty(pool);
  }

  /** GetBackends failed: ask another gateway, wait and ask again, go through the gateway, or fail the calls. */
  private refused(pool: PickPool, waiters: Waiter[], err: grpc.ServiceError, gateway: GatewayConnection, tried: GatewayConnection[]): void {
    const waiting = waiters.filter((w) => !w.gone);
    if (err.code === grpc.status.UNIMPLEMENTED) {
      // A gateway without the LoadBalancer service (an older one): picks come from the others; with none, proxy mode for good.
      gateway.health.succeeded();
      if (!this.withoutLoadBalancer.includes(gateway)) this.withoutLoadBalancer.push(gateway);
      if (this.withoutLoadBalancer.length >= this.parts.gateways.size) this.unsupported = true;
      if (waiting.length > 0 && !this.unsupported && this.anotherGateway(tried)) this.ask(pool, waiting, tried);
      else for (const w of waiting) w.settle('gateway');
      return;
    }
    const e = gateway.errorOf(err);
    // Not reached (or lost before it answered): nothing ran, and a pick it may have made lapses there; another gateway is asked.
    if (e.code === 'GATEWAY_UNAVAILABLE' || e.code === 'GATEWAY_LOST') {
      gateway.markDown();
      const next = [...tried, gateway];
      if (waiting.length > 0 && this.anotherGateway(next)) return this.ask(pool, waiting, next);
      // A gateway without the service answers: the calls go through the gateways (their failover decides); else this is their error.
      for (const w of waiting) w.settle(this.withoutLoadBalancer.length > 0 ? 'gateway' : e);
      this.dropIfEmpty(pool);
      return;
    }
    gateway.health.succeeded();
    // Unknown here may mean "not registered yet": the gateway waits for it during its startup grace.
    if (e.code === 'FUNCTION_NOT_FOUND') {
      for (const w of waiting) w.settle('gateway');
      return;
    }
    // No provider with room, or none yet: the gateway would have queued the call; ask again after its hint.
    const retryAfter = e.retryAfterMs ?? 0;
    if ((e.code === 'OVERLOADED' || e.code === 'NO_NODE_AVAILABLE') && retryAfter > 0) {
      const now = Date.now();
      for (const w of waiting) {
        if (now + retryAfter < w.giveUpAt) pool.waiting.push(w);
        else w.settle(e);
      }
      if (pool.waiting.length > 0) this.schedule(pool, retryAfter);
      return;
    }
    for (const w of waiting) w.settle(e);
    this.dropIfEmpty(pool);
  }

  /** Whether a gateway is left to ask for picks, besides `tried` and those without the service. */
  private anotherGateway(tried: readonly GatewayConnection[]): boolean {
    return new Set([...tried, ...this.withoutLoadBalancer]).size < this.parts.gateways.size;
  }

  /** A pool with nothing waiting or kept is dropped: routing options (affinity keys) vary without bound. */
  private dropIfEmpty(pool: PickPool): void {
    if (pool.waiting.length === 0 && pool.idle.length === 0 && !pool.scheduled && this.pools.get(pool.key) === pool) this.pools.delete(pool.key);
  }

  private poolOf(request: CallRequest): PickPool {
    const o: WireCallOptions | undefined = request.options;
    const backendRequest: BackendRequest = {
      clientId: this.parts.options.clientId ?? '',
      service: request.function,
      affinityKey: o?.affinityKey ?? '',
      requirements: o?.requirements ?? {},
      strategy: o?.strategy ?? '',
      fallbackStrategy: o?.fallbackStrategy ?? '',
      count: 0,
      preferLocation: o?.preferLocation ?? '',
      maxLatencyMs: o?.maxLatencyMs ?? 0,
      maxCost: o?.maxCost ?? 0,
      complexity: o?.complexity ?? 0,
    };
    const key = JSON.stringify(backendRequest);
    let pool = this.pools.get(key);
    if (pool === undefined) this.pools.set(key, (pool = { key, request: backendRequest, waiting: [], idle: [], scheduled: false }));
    return pool;
  }

  // ---- calls --------------------------------------------------------------------------

  /** Sends a call on a pick: directly, or through the gateway when the pick's node cannot be reached. */
  private send(call: LookAsideCall, pick: HeldPick): void {
    const { info } = pick;
    const until = this.unreachable.get(info.id);
    if (until !== undefined && Date.now() >= until) this.unreachable.delete(info.id);
    if (info.address === '' || (until !== undefined && Date.now() < until)) {
      this.report(pick, { ok: false, latencyMs: 0, keep: false, discard: true });
      call.startWith(this.parts.viaGateway(call.request, call.listenerFor(undefined, this)));
      return;
    }
    const address = info.address.includes(':') ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
    let connection = this.connections.get(address);
    if (connection === undefined) this.connections.set(address, (connection = this.parts.direct(address)));
    const direct = connection;
    // A first connection is given a short time: an address behind NAT or a firewall would
    // otherwise hold the call for the whole TCP connect timeout.
    direct.ready(this.connectTimeoutMs).then(
      () => {
        if (!call.stopped) call.startWith(direct.start(call.request, call.listenerFor(pick, this)));
        else this.report(pick, { ok: false, latencyMs: 0, keep: false, discard: true });
      },
      () => this.unreachableNode(call, pick, address),
    );
  }

  /** The node's direct address could not be reached: remembered, and this call goes through the gateway. */
  unreachableNode(call: LookAsideCall, pick: HeldPick, address: string): void {
    this.unreachable.set(pick.info.id, Date.now() + this.unreachableMs);
    this.connections.get(address)?.close();
    this.connections.delete(address);
    this.report(pick, { ok: false, latencyMs: 0, keep: false, discard: true });
    if (!call.stopped) call.startWith(this.parts.viaGateway(call.request, call.listenerFor(undefined, this)));
  }

  /** A direct call ended: its outcome goes to the gateway, the pick back to the pool while it lasts. */
  finished(call: LookAsideCall, pick: HeldPick, latencyMs: number, err: EasyRemoteError | undefined): void {
    const discard = err !== undefined && NOT_THE_PROVIDERS.has(err.code);
    const keep = !this.closed && err === undefined && Date.now() < pick.usableUntil;
    this.report(pick, { ok: err === undefined, latencyMs, keep, discard });
    const pool = this.poolOf(call.request);
    if (!keep) return this.dropIfEmpty(pool);
    // Its slot went back with the outcome: a lapsed idle pick is simply dropped.
    pick.idleTimer = setTimeout(() => {
      const i = pool.idle.indexOf(pick);
      if (i >= 0) pool.idle.splice(i, 1);
      this.dropIfEmpty(pool);
    }, Math.max(0, pick.usableUntil - Date.now()));
    pick.idleTimer.unref();
    pool.idle.push(pick);
    // A call waiting for a pick of this pool takes the one just freed.
    const waiter = pool.waiting.find((w) => !w.gone);
    if (waiter !== undefined) {
      pool.waiting.splice(pool.waiting.indexOf(waiter), 1);
      pool.idle.pop();
      clearTimeout(pick.idleTimer);
      waiter.settle(pick);
    }
  }

  /** A call through the gateway, as in proxy mode. */
  viaGateway(request: CallRequest, listener: CallListener): CallHandle {
    return this.parts.viaGateway(request, listener);
  }

  /** Whether a failed direct call should go to the gateway instead (nothing of it ran, nothing was delivered). */
  retryViaGateway(err: EasyRemoteError, delivered: boolean): boolean {
    return !delivered && NOT_STARTED.has(err.code);
  }

  /** A pick this client will not use (its call went away before it arrived): its slot goes back at once. */
  private release(pick: HeldPick): void {
    this.report(pick, { ok: false, latencyMs: 0, keep: false, discard: true });
  }

  private report(pick: HeldPick, o: { ok: boolean; latencyMs: number; keep: boolean; discard: boolean }): void {
    // Only picks that took a slot need giving back; a plain outcome without one still teaches.
    if (pick.info.pickId === 0 && o.discard) return;
    const metadata = new grpc.Metadata();
    if (this.parts.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.parts.token}`);
    // Off the call's path: the caller has its answer already, and a lost report only delays learning.
    this.lb(pick.gateway).reportOutcome({ backendId: pick.info.id, service: pick.service, pickId: pick.info.pickId, ...o }, metadata, () => undefined);
  }
}

/** One call in look-aside mode, from waiting for a pick to its end, whichever path it takes. */
class LookAsideCall implements CallHandle {
  private underlying: CallHandle | undefined;
  /** While waiting for a pick: stops waiting (and fails the call with `err`, if given). */
  private leaveWait: ((err: EasyRemoteError | undefined) => void) | undefined;
  private detachAbort: (() => void) | undefined;
  /** The consumer cancelled, or the call ended: the listener hears nothing more. */
  stopped = false;

  constructor(
    readonly request: CallRequest,
    private readonly listener: CallListener,
  ) {}

  /** While the call waits for a pick, an abort ends it (Cancelled) and a cancel silently. */
  onWaitCancelled(leave: (err: EasyRemoteError | undefined) => void): void {
    this.leaveWait = leave;
    const signal = this.request.signal;
    if (signal !== undefined) {
      const onAbort = () => leave(new Cancelled(`call to ${this.request.function} was aborted`, { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      this.detachAbort = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** It has a pick (or an answer): the path it takes watches the signal from now on. */
  detachWait(): void {
    this.leaveWait = undefined;
    this.detachAbort?.();
  }

  startWith(handle: CallHandle): void {
    this.underlying = handle;
  }

  credit(chunks: number): void {
    this.underlying?.credit(chunks);
  }

  cancel(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.underlying !== undefined) this.underlying.cancel();
    else this.leaveWait?.(undefined);
  }

  fail(err: EasyRemoteError): void {
    this.detachWait();
    if (this.stopped) return;
    this.stopped = true;
    this.listener.error(err);
  }

  /**
   * The listener for one path of the call. On a direct path (with `pick`) its outcome is
   * reported, a refusal before the handler ran goes to the gateway instead, and a broken
   * direct connection is the node's loss, as the gateway would report it.
   */
  listenerFor(pick: HeldPick | undefined, router: LookAsideRouter): CallListener {
    const startedAt = performance.now();
    let delivered = false;
    let over = false;
    const end = (err: EasyRemoteError | undefined) => {
      if (over) return false;
      over = true;
      if (pick !== undefined) router.finished(this, pick, performance.now() - startedAt, err);
      return true;
    };
    return {
      payload: (bytes) => {
        if (over) return;
        delivered = true;
        // A call with one result ends with it.
        if (!this.request.stream && end(undefined)) this.stopped = true;
        this.listener.payload(bytes);
      },
      end: () => {
        if (end(undefined)) {
          this.stopped = true;
          this.listener.end();
        }
      },
      error: (err) => {
        if (over) return;
        if (pick !== undefined && err.code === 'GATEWAY_UNAVAILABLE' && !delivered) {
          // The connection failed before anything reached the node: nothing ran.
          over = true;
          router.unreachableNode(this, pick, pick.info.address.includes(':') ? `[${pick.info.address}]:${pick.info.port}` : `${pick.info.address}:${pick.info.port}`);
          return;
        }
        if (pick !== undefined && router.retryViaGateway(err, delivered) && !this.stopped) {
          end(err);
          this.startWith(router.viaGateway(this.request, this.listenerFor(undefined, router)));
          return;
        }
        const reported = pick !== undefined && err.code === 'GATEWAY_LOST' ? new NodeLost(`node ${pick.info.id} was lost during ${this.request.function} (its direct connection broke); it may or may not have run`, { nodeId: pick.info.id, cause: err }) : err;
        end(reported);
        this.fail(reported);
      },
    };
  }
}
