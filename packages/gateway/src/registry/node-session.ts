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
  telemetry: TelemetrySnapshot | undefined;
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
