// The gateway's picture of each node: alive (lease), ejected functions, load, RTT and
// telemetry, with the reason whenever a node is not healthy or not available. It also
// holds the one rule for whether a provider may get a new call.
import type { NodeInfo } from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import type { Registry } from '../registry/registry.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { NodeSession } from '../registry/node-session.js';
import type { Provider } from '../registry/provider.js';
import type { OutlierDetector } from './outlier-detector.js';

/** A node whose load is at or above this is not `available` (strategies steer away). */
export const DEFAULT_AVAILABLE_THRESHOLD = 0.9;

export type NodeHealth = Omit<NodeInfo, 'peer' | 'uptimeS' | 'functions' | 'capabilities' | 'kind' | 'direct' | 'gateways'>;

export interface HealthMonitorOptions {
  leaseMs: number;
  availableThreshold?: number;
  clock: Clock;
}

export class NodeHealthMonitor {
  private readonly threshold: number;

  constructor(
    private readonly registry: Registry,
    private readonly detector: OutlierDetector,
    private readonly options: HealthMonitorOptions,
  ) {
    this.threshold = options.availableThreshold ?? DEFAULT_AVAILABLE_THRESHOLD;
  }

  leaseAlive(session: NodeSession, now: number = this.options.clock.now()): boolean {
    return now - session.lastSeen <= this.options.leaseMs;
  }

  /**
   * The one rule for whether a provider may get a new call of this function: its node is
   * active (not draining or gone), its lease is alive, and, where the function has outlier
   * detection on, it is not ejected for this function. Capacity is the router's concern.
   * `now` (clock.now) lets a caller asking about many providers read the clock once.
   */
  routable(provider: Provider, entry: FunctionEntry, now: number = this.options.clock.now()): boolean {
    const session = provider.session;
    return (
      session.state === 'active' &&
      this.leaseAlive(session, now) &&
      (!entry.config.healthCheck.enabled || this.detector.isRoutable(session.nodeId, entry.name))
    );
  }

  /**
   * Soft filter: the machine is busy with other work (CPU or GPU near saturation), so
   * strategies steer away while other nodes have headroom. Queues are not counted here:
   * with maxConcurrent 1 one call would make a node "loaded", and weighing queues against
   * speed is what the strategies do (the strategies benchmark showed counting them here
   * forced idle slow nodes over fast ones with a short queue).
   */
  available(provider: Provider): boolean {
    return provider.session.load < this.threshold;
  }

  occupancy(session: NodeSession): number {
    const slots = session.slotCapacity;
    return slots > 0 ? Math.min(1, (session.inFlight + session.inFlightElsewhere) / slots) : 0;
  }

  private functionsOf(session: NodeSession): string[] {
    const names: string[] = [];
    for (const f of this.registry.functions.values()) if (f.providers.get(session.nodeId)?.session === session) names.push(f.name);
    return names;
  }

  health(session: NodeSession, functions = this.functionsOf(session)): NodeHealth {
    const now = this.options.clock.now();
    const ejected = functions.filter((fn) => this.detector.state(session.nodeId, fn) !== 'closed');
    const load = session.load;
    const reasons: string[] = [];
    if (!this.leaseAlive(session)) reasons.push(`no frame for ${Math.round(now - session.lastSeen)} ms (lease ${this.options.leaseMs} ms)`);
    if (session.state !== 'active') reasons.push(session.state);
    if (functions.length > 0 && ejected.length === functions.length) reasons.push(`ejected for ${ejected.join(', ')}`);
    const healthy = reasons.length === 0;
    if (healthy && load >= this.threshold) reasons.push(`load ${load.toFixed(2)} >= ${this.threshold}`);
    return {
      nodeId: session.nodeId,
      state: session.state,
      healthy,
      available: healthy && load < this.threshold,
      load,
      occupancy: this.occupancy(session),
      reason: reasons.join('; '),
      lastSeenMsAgo: Math.round(now - session.lastSeen),
      rttMs: session.rttMs,
      inFlight: session.inFlight,
      inFlightElsewhere: session.inFlightElsewhere,
      telemetry: session.telemetry,
      telemetryIssue: session.telemetryIssue,
      ejected,
    };
  }

  /** A node as operators see it (the admin API's node document). */
  summary(session: NodeSession): NodeInfo {
    const functions = this.functionsOf(session);
    return {
      ...this.health(session, functions),
      peer: session.peer,
      uptimeS: Math.round((this.options.clock.now() - session.joinedAt) / 1000),
      functions,
      capabilities: session.capabilities,
      kind: session.kind,
      direct: session.direct,
      gateways: session.gateways.map((g) => ({ ...g })),
    };
  }

  nodes(): NodeInfo[] {
    return [...this.registry.sessions.values()].map((s) => this.summary(s));
  }
}
