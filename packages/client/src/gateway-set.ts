// The gateways a client calls through: one connection per address (a name resolving to
// several addresses of one family counts once per address), and the choice of gateway
// for each attempt of a call.
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { expandGatewayAddresses, splitHostPort, type AddressLookup, type GatewayTarget } from '@easyremote/protocol';
import { FailoverCall, type CallRequest, type CallRouting } from './failover-call.js';
import { GatewayConnection, type ConnectionSettings } from './gateway-connection.js';
import { IdempotencyKnowledge } from './idempotency.js';
import type { CallHandle, CallListener } from './session.js';

export type GatewaySetSettings = Omit<ConnectionSettings, 'knowledge' | 'now' | 'random'> & { lookup: AddressLookup | undefined };

/**
 * The gateway for an attempt, among those the call has not tried (all of them once it has
 * tried each): a down gateway whose retry delay is over and that no other call is trying
 * (this call becomes its trial, so that a recovered gateway is found within a delay);
 * else the up gateway with the fewest calls outstanding (ties at random); else, so that no
 * call is refused for want of a healthy gateway, the one that will be tried soonest.
 */
export function pickGateway(members: readonly GatewayConnection[], tried: readonly GatewayConnection[], now: number, random: () => number): GatewayConnection {
  // Without allocating: the pool is the untried members, or all of them when none is left.
  let untried = 0;
  for (const m of members) if (!tried.includes(m)) untried++;
  const inPool = (m: GatewayConnection) => untried === 0 || !tried.includes(m);
  for (const m of members) if (m.health.state === 'down' && inPool(m) && m.health.acquire(now)) return m;
  let best: GatewayConnection | undefined;
  let ties = 0;
  for (const m of members) {
    if (m.health.state !== 'up' || !inPool(m)) continue;
    if (best === undefined || m.outstanding < best.outstanding) {
      best = m;
      ties = 1;
    } else if (m.outstanding === best.outstanding && random() * ++ties < 1) {
      best = m;
    }
  }
  if (best !== undefined) return best;
  let soonest: GatewayConnection | undefined;
  for (const m of members) {
    if (!inPool(m)) continue;
    if (soonest === undefined || (m.health.state !== 'trial' && (soonest.health.state === 'trial' || m.health.retryAt < soonest.health.retryAt))) soonest = m;
  }
  return soonest!;
}

export class GatewaySet implements CallRouting {
  readonly knowledge = new IdempotencyKnowledge();
  private members: GatewayConnection[] = [];
  private readonly ready: Promise<void>;
  private resolved = false;
  private closed = false;

  constructor(
    addresses: readonly string[],
    private readonly settings: GatewaySetSettings,
    private readonly random: () => number = Math.random,
  ) {
    // Addresses that need no lookup make their connections at once; a name waits for its lookup (calls wait with it).
    if (addresses.every((a) => !needsLookup(a))) {
      this.connectTo(addresses.map((address) => ({ address, given: address })));
      this.ready = Promise.resolve();
    } else {
      this.ready = expandGatewayAddresses(addresses, settings.lookup).then((targets) => this.connectTo(targets));
    }
  }

  get size(): number {
    return this.members.length;
  }

  /** The addresses dialled, once known (a name resolving to several appears as each). */
  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  now(): number {
    return performance.now();
  }

  pick(tried: readonly GatewayConnection[]): GatewayConnection {
    return pickGateway(this.members, tried, this.now(), this.random);
  }

  /** Sends a call over the gateways; its outcome goes to `listener`. */
  start(request: CallRequest, listener: CallListener): CallHandle {
    const call = new FailoverCall(this, request, listener);
    this.whenKnown(() => call.begin());
    return call;
  }

  /** Runs `f` once the gateways are known: at once, unless a name is still being looked up. */
  whenKnown(f: () => void): void {
    if (this.resolved) f();
    else void this.ready.then(f);
  }

  /** Resolves once any gateway's channel is connected. */
  async waitForReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.ready;
    await Promise.any(this.members.map((m) => m.waitForReady(deadline))).catch((err: AggregateError) => {
      throw err.errors[0] ?? err;
    });
  }

  close(): void {
    this.closed = true;
    for (const m of this.members) m.close();
  }

  private connectTo(targets: readonly GatewayTarget[]): void {
    const settings: ConnectionSettings = { ...this.settings, knowledge: this.knowledge, now: () => this.now(), random: this.random };
    this.members = targets.map((t) => new GatewayConnection(t, settings));
    this.resolved = true;
    if (this.closed) for (const m of this.members) m.close();
  }
}

/** A host name that could stand for several gateways; IP literals and other targets need no lookup. */
function needsLookup(address: string): boolean {
  const hp = splitHostPort(address);
  return hp !== undefined && isIP(hp.host) === 0;
}
