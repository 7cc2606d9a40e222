// The NodeLink service: one bidirectional stream per node. Registration (tokens, node
// certificates, names, duplicate ids, protocol version), frames routed to the dispatcher, heartbeats and
// telemetry, ping/pong RTT, drain in both directions, and the lease sweep that declares
// silent nodes lost.
import type * as grpc from '@grpc/grpc-js';
import {
  clip,
  FrameBatcher,
  InvalidArgument,
  MAX_QUOTED_CHARS,
  PermissionDenied,
  quote,
  PROTOCOL_VERSION,
  RegistrationRefused,
  toEasyRemoteError,
  toServiceError,
  unbatch,
  type EasyRemoteError,
  type GatewayFrame,
  type NodeFrame,
  type Register,
  type Undecodable,
} from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principals.js';
import type { Dispatcher } from '../calls/dispatcher.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import { checkTelemetry } from '../health/telemetry-check.js';
import { checkRegisterFrame } from '../registry/declaration-limits.js';
import { NodeSession } from '../registry/node-session.js';
import { gatewayLinks } from '../registry/gateway-links.js';
import { applyReportedLoad } from '../registry/reported-load.js';
import type { Registry } from '../registry/registry.js';
import { certifiedNodeId, checkRegisteredId } from '../tls/node-identity.js';
import { principalOf } from './metadata.js';

/** Round trips above this are a clock or nonce problem, not a measurement. */
const MAX_PLAUSIBLE_RTT_MS = 60_000;
/** Weight of the newest RTT sample in its running average. */
const RTT_EWMA_ALPHA = 0.2;

export interface NodeLinkSettings {
  gatewayId: string;
  heartbeatMs: number;
  leaseMs: number;
  maxPayloadBytes: number;
  /** Slow-start window for nodes that join (ms; 0 = off). */
  slowStartMs: number;
  /** When queued frames are written: one message per turn by default; at once writes each frame alone. */
  deferFlush?: (flush: () => void) => void;
  /** A node's id is the one its verified client certificate names. */
  nodeCertificates?: boolean;
}

/** What the rest of the gateway hears about nodes (events, logs, metrics). */
export interface NodeLinkObserver {
  joined(session: NodeSession): void;
  /** `clean`: the node left on its own with nothing in flight; otherwise it was lost. */
  left(session: NodeSession, clean: boolean): void;
  refused(nodeId: string, err: EasyRemoteError, principal?: string): void;
  /** A frame from a registered node was refused or failed; the stream goes on. */
  dropped(nodeId: string, err: EasyRemoteError): void;
  /** `by`: 'node' when it drains itself, else 'operator <principal>'. */
  draining(session: NodeSession, by: string): void;
}

export interface NodeLinkParts {
  registry: Registry;
  dispatcher: Dispatcher;
  detector: OutlierDetector;
  auth: Authenticator;
  clock: Clock;
  observer: NodeLinkObserver;
  settings: NodeLinkSettings;
}

/** Payload bytes a frame to a node carries (what makes a batch large). */
function gatewayFrameBytes(f: GatewayFrame): number {
  return f.invoke?.args.length ?? f.argsPart?.data.length ?? 0;
}

// A frame whose bytes did not decode is refused alone, not with the whole stream: grpc-js
// would end the stream on it (garbage, or a 64-bit number above 2^53), cutting off every
// call on that node for one bad frame.
type NodeStream = grpc.ServerDuplexStream<NodeFrame | Undecodable, GatewayFrame>;

/** How often leases are checked: a node silent past its lease is lost within this much more. */
function sweepIntervalMs({ heartbeatMs, leaseMs }: { heartbeatMs: number; leaseMs: number }): number {
  return Math.max(25, Math.min(heartbeatMs / 2, leaseMs / 4));
}

export class NodeLinkService {
  private sweepTimer: TimerHandle | undefined;

  constructor(private readonly parts: NodeLinkParts) {}

  /** The service implementation for grpc-js. */
  handlers(): grpc.UntypedServiceImplementation {
    return { connect: (stream: NodeStream) => this.onStream(stream) };
  }

  /** Leases checked every quarter lease (or half heartbeat), pings once per heartbeat. */
  startSweeping(): void {
    const every = sweepIntervalMs(this.parts.settings);
    const tick = () => {
      this.sweep();
      this.sweepTimer = this.parts.clock.setTimeout(tick, every);
    };
    this.sweepTimer = this.parts.clock.setTimeout(tick, every);
  }

  /** Stops the sweep and ends every node stream. */
  close(): void {
    this.parts.clock.clearTimeout(this.sweepTimer);
    for (const session of [...this.parts.registry.sessions.values()]) {
      this.endSession(session, 'gateway-shutdown');
      session.close();
    }
  }

  /** Tells every node this gateway is stopping (GatewayGoaway): they keep serving through their other gateways. */
  goAway(reason: string): void {
    for (const session of this.parts.registry.sessions.values()) session.send({ goaway: { reason } });
  }

  /** Asks a node to drain: no new calls go to it; it leaves once its calls finish. */
  drain(nodeId: string, by?: string): boolean {
    const s = this.parts.registry.sessions.get(nodeId);
    if (s === undefined || s.state !== 'active') return false;
    s.state = 'draining';
    s.send({ drain: { reason: 'operator' } });
    // `by` is the principal of an admin API request; gateway.drainNode() from code has none.
    this.parts.observer.draining(s, by === undefined ? 'operator' : `operator ${by}`);
    return true;
  }

  private onStream(stream: NodeStream): void {
    let session: NodeSession | undefined;
    const peer = stream.getPeer();
    // Authenticated on the stream's headers by the intake interceptor.
    const principal = principalOf(stream.metadata, this.parts.auth);
    // Read once: the certificate is the connection's and cannot change on the stream.
    const certified = this.parts.settings.nodeCertificates ? { nodeId: certifiedNodeId(stream.getAuthContext()) } : undefined;
    const onFrame = (frame: NodeFrame) => {
      if (frame.register) {
        // A refused re-registration leaves the stream's registration as it was.
        session = this.onRegister(stream, batcher, frame.register, session, peer, principal, certified) ?? session;
        return;
      }
      if (session === undefined) {
        this.refuse(stream, '', new InvalidArgument('the first frame on a node stream must be register'));
        stream.end();
        return;
      }
      if (session.state === 'closed') return;
      session.lastSeen = this.parts.clock.now();
      this.onFrame(session, frame);
    };
    // Frames to the node that are produced in one turn (invokes, credits) go as one message.
    const batcher = new FrameBatcher<GatewayFrame>({ write: (f) => stream.write(f), batch: (frames) => ({ batch: { frames } }), sizeOf: gatewayFrameBytes, defer: this.parts.settings.deferFlush });
    // Once the gateway has ended the stream (a refusal, a lost lease, a reconnect), frames the
    // node sent before it heard are dropped: answering one would write after the end, which
    // destroys the stream before its status goes out and leaves it open, unread, for good.
    let failed = false;
    stream.on('data', (frame: NodeFrame | Undecodable) => {
      if (failed || stream.writableEnded || stream.destroyed) return;
      try {
        if ('undecodable' in frame) {
          const err = new InvalidArgument(`a frame could not be decoded: ${clip(frame.undecodable, MAX_QUOTED_CHARS)}`);
          if (session === undefined) {
            // Nothing registered yet to keep alive: end the stream with the reason as its status.
            this.parts.observer.refused(peer, err);
            failed = true;
            stream.emit('error', toServiceError(err));
          } else {
            this.parts.observer.dropped(session.nodeId, err);
            session.send({ rejected: { error: err.toDetail() } });
          }
          return;
        }
        unbatch(frame, onFrame);
      } catch (err) {
        this.parts.observer.dropped(session?.nodeId ?? peer, toEasyRemoteError(err));
      }
    });
    const closed = (why: string) => {
      if (session !== undefined) this.endSession(session, why);
    };
    stream.on('end', () => {
      closed('stream ended');
      stream.end();
    });
    stream.on('error', () => closed('stream error'));
    stream.on('cancelled', () => closed('stream cancelled'));
    stream.on('close', () => closed('stream closed'));
  }

  private refuse(stream: NodeStream, nodeId: string, err: EasyRemoteError, principal?: Principal): undefined {
    this.parts.observer.refused(nodeId, err, principal?.name);
    stream.write({ registered: { accepted: false, refusal: err.toDetail(), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: this.parts.settings.gatewayId } });
    return undefined;
  }

  private onRegister(
    stream: NodeStream,
    batcher: FrameBatcher<GatewayFrame>,
    reg: Register,
    current: NodeSession | undefined,
    peer: string,
    principal: Principal,
    certified: { nodeId: string | undefined } | undefined,
  ): NodeSession | undefined {
    const { registry, auth, clock, settings } = this.parts;
    const refuse = (err: EasyRemoteError) => this.refuse(stream, reg.nodeId, err, principal);
    const denied = auth.registerToken(reg.token, principal);
    if (denied) return refuse(denied);
    // A node principal names the ids it may take, so no one can take over another's, whether that node is connected or not.
    if (!principal.mayRegister(reg.nodeId)) return refuse(new PermissionDenied(`${principal.name} may not register node id ${quote(reg.nodeId)}`));
    const oversized = checkRegisterFrame(reg);
    if (oversized) return refuse(oversized);
    // UNAUTHENTICATED, not REGISTRATION_REFUSED: a node retries the latter (a duplicate id
    // may be its own stale session), and no retry changes what a certificate names.
    const impostor = certified === undefined ? undefined : checkRegisteredId(certified.nodeId, reg.nodeId);
    if (impostor) return refuse(impostor);
    // 0 means the node did not say (a minimal client written from the docs); read it as the current version.
    if (reg.protocolVersion !== 0 && reg.protocolVersion !== PROTOCOL_VERSION) {
      return refuse(new InvalidArgument(`node speaks protocol version ${reg.protocolVersion}; this gateway speaks version ${PROTOCOL_VERSION}`));
    }
    try {
      registry.check(reg.nodeId, reg.functions);
    } catch (err) {
      return refuse(toEasyRemoteError(err));
    }
    if (current !== undefined) {
      // Re-registration on the same stream: same node, new function list.
      if (current.nodeId !== reg.nodeId) return refuse(new InvalidArgument(`this stream is node ${current.nodeId}; it cannot become ${reg.nodeId}`));
      current.direct = reg.directAddress;
      if (reg.gateways.length > 0) current.gateways = gatewayLinks(reg.gateways, settings.gatewayId) ?? current.gateways;
      registry.setFunctions(current, reg.functions);
      this.sendRegistered(current);
      return current;
    }
    const existing = registry.sessions.get(reg.nodeId);
    if (existing !== undefined && existing.state !== 'closed') {
      if (reg.instanceId === '' || existing.instanceId !== reg.instanceId) {
        // When the holder would be declared lost if it stays silent from now on: a restarted
        // node finding its own stale session retries after this, and then gets in.
        const retryAfterMs = Math.ceil(Math.max(0, settings.leaseMs - (clock.now() - existing.lastSeen)) + sweepIntervalMs(settings));
        return refuse(new RegistrationRefused(`node id ${reg.nodeId} is already connected from ${existing.peer}`, { retryAfterMs }));
      }
      // The same process reconnected before we noticed its old stream die.
      this.endSession(existing, 'superseded by a reconnect');
      existing.close();
    }
    const caps = reg.capabilities;
    const session = new NodeSession(
      reg.nodeId,
      reg.instanceId,
      {
        send: (frame) => batcher.push(frame),
        writable: () => !stream.writableNeedDrain,
        whenWritable: (listener) => {
          if (!stream.writableNeedDrain) listener();
          else stream.once('drain', listener);
        },
        close: () => {
          batcher.flush();
          batcher.close();
          stream.end();
        },
      },
      {
        cpuCores: caps?.cpuCores ?? 0,
        memoryTotalBytes: caps?.memoryTotalBytes ?? 0,
        gpus: caps?.gpus ?? [],
        labels: caps?.labels ?? {},
        costPerHour: caps?.costPerHour ?? 0,
      },
      clock,
      peer,
    );
    session.principal = principal.name;
    session.slowStartMs = settings.slowStartMs;
    session.direct = reg.directAddress;
    session.gateways = gatewayLinks(reg.gateways, settings.gatewayId) ?? [];
    registry.sessions.set(session.nodeId, session);
    registry.setFunctions(session, reg.functions);
    this.sendRegistered(session);
    this.parts.observer.joined(session);
    return session;
  }

  private sendRegistered(session: NodeSession): void {
    const { heartbeatMs, leaseMs, maxPayloadBytes, gatewayId } = this.parts.settings;
    session.send({ registered: { accepted: true, refusal: undefined, heartbeatMs, leaseMs, maxPayloadBytes, gatewayId } });
  }

  private onFrame(session: NodeSession, frame: NodeFrame): void {
    const { dispatcher, clock } = this.parts;
    if (frame.result) dispatcher.onResult(session, frame.result);
    else if (frame.chunk) dispatcher.onChunk(session, frame.chunk);
    else if (frame.resultPart) dispatcher.onResultPart(session, frame.resultPart);
    else if (frame.end) dispatcher.onEnd(session, frame.end);
    else if (frame.error) dispatcher.onError(session, frame.error);
    else if (frame.progress) dispatcher.onProgress(session, frame.progress);
    else if (frame.heartbeat) {
      const hb = frame.heartbeat;
      // Only declared functions: a node cannot grow this table by naming others.
      applyReportedLoad(session, hb.functions, this.parts.registry.functions);
      if (hb.gateways.length > 0) session.gateways = gatewayLinks(hb.gateways, this.parts.settings.gatewayId) ?? session.gateways;
      if (hb.hasTelemetry) {
        const verdict = checkTelemetry(hb, clock.now());
        if (verdict.ok) {
          session.telemetry = verdict.telemetry;
          session.telemetryIssue = '';
        } else {
          session.telemetry = undefined;
          session.telemetryIssue = `telemetry dropped: ${verdict.problem}`;
        }
      }
    } else if (frame.pong) {
      // The nonce is the gateway's clock (µs) when it pinged.
      const rtt = clock.now() - frame.pong.nonce / 1000;
      if (rtt >= 0 && rtt < MAX_PLAUSIBLE_RTT_MS) session.rttMs = session.rttMs === undefined ? rtt : session.rttMs + RTT_EWMA_ALPHA * (rtt - session.rttMs);
    } else if (frame.drain) {
      if (session.state === 'active') {
        session.state = 'draining';
        this.parts.observer.draining(session, 'node');
      }
    }
  }

  private endSession(session: NodeSession, why: string): void {
    if (session.state === 'closed') return;
    const clean = session.inFlight === 0 && why === 'stream ended';
    session.state = 'closed';
    session.endReason = why;
    // Calls in flight are decided while the lost node is still a provider: whether they may
    // be retried depends on every provider's declaration, the lost node's included, and
    // removing it first would let the others' (say, idempotent) decide alone.
    this.parts.dispatcher.onSessionLost(session, why);
    this.parts.registry.remove(session);
    this.parts.detector.forgetNode(session.nodeId);
    this.parts.observer.left(session, clean);
  }

  /** Leases, pings once per heartbeat interval, functions long without providers, waiting calls. */
  private sweep(): void {
    const { clock, settings, registry, dispatcher } = this.parts;
    registry.sweepEmpty();
    // A lease that recovered or an ejection that ended frees no slot: waiting calls look again.
    dispatcher.pumpAll(registry.functions);
    const now = clock.now();
    for (const session of [...this.parts.registry.sessions.values()]) {
      if (now - session.lastSeen > settings.leaseMs) {
        this.endSession(session, `no frame for ${Math.round(now - session.lastSeen)} ms (lease ${settings.leaseMs} ms)`);
        session.close();
        continue;
      }
      // The sweep runs more often than the heartbeat (lease precision); pings follow the heartbeat.
      if (now - session.lastPingAt >= settings.heartbeatMs * 0.9) {
        session.lastPingAt = now;
        session.send({ ping: { nonce: Math.round(now * 1000) } });
      }
    }
  }
}
