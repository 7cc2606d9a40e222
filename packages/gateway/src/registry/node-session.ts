// One connected node: its stream, declaration, live figures and the attempts it runs.
import type * as grpc from '@grpc/grpc-js';
import type { GatewayFrame, NodeFrame } from '@easyremote/protocol';
import type { NodeCapabilities, TelemetrySnapshot } from '../strategies/strategy.js';
import type { Attempt } from '../calls/attempt.js';

export type SessionState = 'active' | 'draining' | 'closed';

export class NodeSession {
  state: SessionState = 'active';
  lastSeen: number;
  telemetry: TelemetrySnapshot | undefined;
  rttMs: number | undefined;
  /** Function name → {inFlight, queued} as the node last reported. */
  reported = new Map<string, { inFlight: number; queued: number }>();
  /** Attempts in flight on this node, by attempt id. */
  readonly attempts = new Map<number, Attempt>();
  /** Why the session ended (lost / left / superseded), set once. */
  endReason = '';
  /** When the gateway last pinged this node (ms). */
  lastPingAt = 0;
  /** Call slots the node declared over all its functions (0 when any is unlimited). */
  slotCapacity = 0;
  /** Slow-start window for this node's weight (ms; 0 = none). */
  slowStartMs = 0;

  constructor(
    readonly nodeId: string,
    readonly instanceId: string,
    readonly stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>,
    public capabilities: NodeCapabilities,
    readonly joinedAt: number,
    readonly peer: string,
  ) {
    this.lastSeen = joinedAt;
  }

  send(frame: GatewayFrame): void {
    if (this.state === 'closed') return;
    this.stream.write(frame);
  }

  get inFlight(): number {
    return this.attempts.size;
  }
}
