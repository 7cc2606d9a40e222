// One connected node: how to reach it, what it declared, and the live figures routing reads.
import type { GatewayFrame, NodeGatewayLink } from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import type { NodeCapabilities, TelemetrySnapshot } from '../strategies/strategy.js';

export type SessionState = 'active' | 'draining' | 'closed';

/** A compute node on a NodeLink stream, or a look-aside backend that registered over the LoadBalancer service (the gateway cannot send it calls). */
export type SessionKind = 'node' | 'backend';

/** The node's end of the link: frames to it, its buffer, and closing it. */
export interface NodeChannel {
  send(frame: GatewayFrame): void;
  /** False while the stream's buffer is over its mark. */
  writable(): boolean;
  /** Calls `listener` once the stream can take more. */
  whenWritable(listener: () => void): void;
  close(): void;
}

export class NodeSession {
  state: SessionState = 'active';
  lastSeen: number;
  rttMs: number | undefined;
  /** The functions the node declared; heartbeats report on these only. */
  functions: ReadonlySet<string> = new Set();
  /** The principal whose token registered it. */
  principal = '';
  /** Why the node's last telemetry was dropped ('' when it was usable). */
  telemetryIssue = '';
  /** Function name → {inFlight, queued} as the node last reported, and the share beyond this gateway's own (registry/reported-load.ts). */
  reported = new Map<string, { inFlight: number; queued: number; elsewhere: number }>();
  /** Attempts of any function in flight on this node (kept by the dispatcher). */
  inFlight = 0;
  /** The node's reported calls beyond this gateway's own, over all its functions (as of its last heartbeat). */
  inFlightElsewhere = 0;
  /** The node's links to gateways, as it last reported them (register or heartbeat). */
  gateways: readonly NodeGatewayLink[] = [];
  /** Why the session ended (lost / left / superseded), set once. */
  endReason = '';
  /** When the gateway last pinged this node (clock.now ms). */
  lastPingAt = 0;
  /** Call slots the node declared over all its functions (0 when any is unlimited). */
  slotCapacity = 0;
  /** Slow-start window for this node's weight (ms; 0 = none). */
  slowStartMs = 0;
  /** Where clients may call it directly (look-aside), host:port; '' when only through the gateway. */
  direct = '';
  kind: SessionKind = 'node';
  readonly joinedAt: number;
  private telemetryValue: TelemetrySnapshot | undefined;
  private loadValue = 0;

  constructor(
    readonly nodeId: string,
    readonly instanceId: string,
    private readonly channel: NodeChannel,
    public capabilities: NodeCapabilities,
    readonly clock: Clock,
    readonly peer: string,
  ) {
    this.joinedAt = clock.now();
    this.lastSeen = this.joinedAt;
  }

  /** What the node last reported of its machine; undefined before the first report or after an unusable one. */
  get telemetry(): TelemetrySnapshot | undefined {
    return this.telemetryValue;
  }

  set telemetry(t: TelemetrySnapshot | undefined) {
    this.telemetryValue = t;
    this.loadValue = machineLoad(t);
  }

  /**
   * How busy the machine is, from its telemetry: the larger of CPU use and the mean GPU
   * use, as fractions (0 without telemetry). Worked out when telemetry arrives, since
   * routing reads it for every candidate (NodeHealthMonitor.available).
   */
  get load(): number {
    return this.loadValue;
  }

  send(frame: GatewayFrame): void {
    if (this.state !== 'closed') this.channel.send(frame);
  }

  writable(): boolean {
    return this.channel.writable();
  }

  whenWritable(listener: () => void): void {
    this.channel.whenWritable(listener);
  }

  /** Ends the node's stream (after the session was removed). */
  close(): void {
    this.channel.close();
  }
}

function machineLoad(t: TelemetrySnapshot | undefined): number {
  if (t === undefined) return 0;
  const gpus = t.gpus;
  let gpu = 0;
  if (gpus.length > 0) {
    for (let i = 0; i < gpus.length; i++) gpu += gpus[i]!.utilizationPercent;
    gpu /= 100 * gpus.length;
  }
  return Math.max(t.cpuPercent / 100, gpu);
}
