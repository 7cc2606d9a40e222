// The gateway's picture of each node: alive (lease), ejected functions, load, RTT and
// telemetry, with the reason whenever a node is not healthy or not available.
import type { Registry } from '../registry/registry.js';
import type { NodeSession } from '../registry/node-session.js';
import type { Provider } from '../registry/provider.js';
import type { TelemetrySnapshot } from '../strategies/strategy.js';
import type { OutlierDetector } from './outlier-detector.js';

/** A node whose load is at or above this is not `available` (strategies steer away). */
export const DEFAULT_AVAILABLE_THRESHOLD = 0.9;

export interface NodeHealth {
  nodeId: string;
  state: string;
  /** Lease alive, not draining, and not ejected for every function it serves. */
  healthy: boolean;
  /** Healthy and machine load under the threshold. */
  available: boolean;
  /** 0..1: the machine's load from telemetry, the larger of CPU and average GPU utilisation (0 without telemetry). */
  load: number;
  /** 0..1: share of its declared call slots in use at the gateway (0 when any function is unlimited). */
  occupancy: number;
  /** Why not healthy / available; '' when both. */
  reason: string;
  lastSeenMsAgo: number;
  rttMs: number | undefined;
  inFlight: number;
  telemetry: TelemetrySnapshot | undefined;
  /** Functions this node is currently ejected for. */
  ejected: string[];
}

export interface HealthMonitorOptions {
  leaseMs: number;
  availableThreshold?: number;
  now: () => number;
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

  leaseAlive(session: NodeSession): boolean {
    return this.options.now() - session.lastSeen <= this.options.leaseMs;
  }

  /** Per call: may this provider get a new call of this function? */
  routable(provider: Provider, functionName: string): boolean {
    return this.leaseAlive(provider.session) && this.detector.isRoutable(provider.session.nodeId, functionName);
  }

  /**
   * Soft filter: the machine is busy with other work (CPU or GPU near saturation), so
   * strategies steer away while other nodes have headroom. Queues are not counted here:
   * with maxConcurrent 1 one call would make a node "loaded", and weighing queues against
   * speed is what the strategies do (the strategies benchmark showed counting them here
   * forced idle slow nodes over fast ones with a short queue).
   */
  available(provider: Provider): boolean {
    return this.load(provider.session) < this.threshold;
  }

  /** O(1): runs per candidate on every call. */
  load(session: NodeSession): number {
    const t = session.telemetry;
    if (t === undefined) return 0;
    const gpu = t.gpus.length === 0 ? 0 : t.gpus.reduce((sum, g) => sum + g.utilizationPercent, 0) / (100 * t.gpus.length);
    return Math.max(t.cpuPercent / 100, gpu);
  }

  occupancy(session: NodeSession): number {
    const slots = session.slotCapacity;
    return slots > 0 ? Math.min(1, session.inFlight / slots) : 0;
  }

  health(session: NodeSession): NodeHealth {
    const now = this.options.now();
    const functions = [...this.registry.functions.values()].filter((f) => f.providers.get(session.nodeId)?.session === session).map((f) => f.name);
    const ejected = functions.filter((fn) => this.detector.state(session.nodeId, fn) !== 'closed');
    const load = this.load(session);
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
      telemetry: session.telemetry,
      ejected,
    };
  }

  all(): NodeHealth[] {
    return [...this.registry.sessions.values()].map((s) => this.health(s));
  }
}
