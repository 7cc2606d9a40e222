// The gateway: a gRPC server with two services. Nodes dial NodeLink and keep one stream
// each; clients call Gateway.Call / Gateway.CallStream. Everything on the per-call path
// stays in memory: no payload decoding, no disk, no logging.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  ENVELOPE_SLACK_BYTES,
  EasyRemoteError,
  FunctionNotFound,
  GatewayService,
  InvalidArgument,
  KEEPALIVE_OPTIONS,
  NodeLinkService,
  PayloadTooLarge,
  RegistrationRefused,
  Unauthenticated,
  toEasyRemoteError,
  toServiceError,
  type CallReply,
  type CallRequest,
  type GatewayFrame,
  type NodeFrame,
  type Register,
  type StreamReply,
} from '@easyremote/protocol';
import { bearerToken, callerMetadata } from './api/metadata.js';
import { streamSink, unarySink } from './api/call-sinks.js';
import type { CallSink } from './calls/call-sink.js';
import { Dispatcher, type DispatcherHooks } from './calls/dispatcher.js';
import { PendingCall } from './calls/pending-call.js';
import type { FunctionConfig } from './registry/function-entry.js';
import { NodeSession } from './registry/node-session.js';
import { Registry } from './registry/registry.js';
import { Router } from './routing/router.js';

export const DEFAULT_PORT = 50051;
export const DEFAULT_HOST = '127.0.0.1';
/** Time limit for calls when neither the caller nor the function sets one. */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export interface GatewayOptions {
  /** TCP port; 0 picks a free one (read `address` after start). Default 50051. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1; anything else needs auth or `insecure: true`. */
  host?: string;
  /** Listen beyond loopback without authentication. */
  insecure?: boolean;
  /** Heartbeat interval asked of nodes, ms. */
  heartbeatMs?: number;
  /** A node with no frame for this long is lost, ms (default 3 × heartbeat). */
  leaseMs?: number;
  /** Largest args or result payload, bytes. */
  maxPayloadBytes?: number;
  defaultTimeoutMs?: number;
  /** Attempts per call (first try plus retries). */
  maxAttempts?: number;
  /** Gateway-side configuration per function; overrides what nodes declare. */
  functions?: Record<string, Partial<FunctionConfig>>;
  auth?: {
    /** Tokens nodes must present in the register frame (or `authorization: Bearer`). */
    nodeTokens?: string[];
    /** Tokens clients must present as `authorization: Bearer <token>`. */
    clientTokens?: string[];
  };
  /** Injected randomness (strategies). */
  random?: () => number;
  /** Lifecycle log lines (node joined/lost, refusals); never per call. Default: console.error. */
  log?: (line: string) => void;
}

export interface NodeSummary {
  nodeId: string;
  state: string;
  peer: string;
  joinedAt: number;
  lastSeenMsAgo: number;
  inFlight: number;
  rttMs: number | undefined;
  functions: string[];
  labels: Record<string, string>;
}

export interface GatewayEvents {
  'node-joined': [NodeSession];
  'node-left': [NodeSession, string];
  'node-refused': [string, EasyRemoteError];
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly id = randomUUID();
  readonly registry: Registry;
  readonly dispatcher: Dispatcher;
  readonly router: Router;
  private readonly server: grpc.Server;
  private readonly heartbeatMs: number;
  private readonly leaseMs: number;
  private readonly maxPayloadBytes: number;
  private readonly defaultTimeoutMs: number;
  private readonly log: (line: string) => void;
  private nextCallId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private stopped = false;

  constructor(private readonly options: GatewayOptions = {}) {
    super();
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.leaseMs = options.leaseMs ?? Math.max(DEFAULT_LEASE_MS, 3 * this.heartbeatMs);
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.log = options.log ?? ((line) => console.error(`[gateway] ${line}`));
    this.registry = new Registry(options.functions);
    this.router = new Router({ random: options.random ?? Math.random, now: () => performance.now() });
    this.dispatcher = new Dispatcher({ router: this.router, maxAttempts: options.maxAttempts });
    const limit = this.maxPayloadBytes + ENVELOPE_SLACK_BYTES;
    this.server = new grpc.Server({
      ...KEEPALIVE_OPTIONS,
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      // Nodes and clients ping every 10 s; allow it.
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    });
    this.server.addService(NodeLinkService, { connect: (stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>) => this.onNodeStream(stream) });
    this.server.addService(GatewayService, {
      call: (call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>) => this.onCall(call, callback),
      callStream: (call: grpc.ServerWritableStream<CallRequest, StreamReply>) => this.onCallStream(call),
    });
  }

  /** Hooks for later subsystems (metrics, health, admission). */
  addHooks(hooks: DispatcherHooks): void {
    const prev = this.dispatcher.hooks;
    this.dispatcher.hooks = {
      attemptFinished: chain(prev.attemptFinished, hooks.attemptFinished),
      callFinished: chain(prev.callFinished, hooks.callFinished),
      enqueue: hooks.enqueue ?? prev.enqueue,
    };
  }

  async start(): Promise<void> {
    const host = this.options.host ?? DEFAULT_HOST;
    const hasAuth = (this.options.auth?.clientTokens?.length ?? 0) > 0 && (this.options.auth?.nodeTokens?.length ?? 0) > 0;
    if (!LOOPBACK.has(host) && !hasAuth && !this.options.insecure) {
      throw new Error(`refusing to listen on ${host} without node and client tokens; set auth, or insecure: true to accept the risk`);
    }
    const port = this.options.port ?? DEFAULT_PORT;
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${hostPart}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.min(this.heartbeatMs, this.leaseMs / 4)));
    this.sweepTimer.unref();
  }

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${this.options.host ?? DEFAULT_HOST}:${this.boundPort}`;
  }

  /** Stops listening and ends every call and node stream. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweepTimer);
    this.dispatcher.shutdown();
    for (const session of [...this.registry.sessions.values()]) {
      this.endSession(session, 'gateway-shutdown');
      session.stream.end();
    }
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  nodes(): NodeSummary[] {
    const now = performance.now();
    return [...this.registry.sessions.values()].map((s) => ({
      nodeId: s.nodeId,
      state: s.state,
      peer: s.peer,
      joinedAt: s.joinedAt,
      lastSeenMsAgo: Math.round(now - s.lastSeen),
      inFlight: s.inFlight,
      rttMs: s.rttMs,
      functions: [...this.registry.functions.values()].filter((f) => f.providers.get(s.nodeId)?.session === s).map((f) => f.name),
      labels: { ...s.capabilities.labels },
    }));
  }

  /** Asks a node to drain: no new calls go to it; it leaves once its calls finish. */
  drainNode(nodeId: string): boolean {
    const s = this.registry.sessions.get(nodeId);
    if (s === undefined || s.state !== 'active') return false;
    s.state = 'draining';
    s.send({ drain: { reason: 'operator' } });
    return true;
  }

  // ---- clients -------------------------------------------------------------------------

  private authorizeClient(metadata: grpc.Metadata): EasyRemoteError | undefined {
    const tokens = this.options.auth?.clientTokens;
    if (!tokens || tokens.length === 0) return undefined;
    const token = bearerToken(metadata);
    if (token === undefined) return new Unauthenticated('missing client token: send metadata authorization: Bearer <token>');
    return tokens.includes(token) ? undefined : new Unauthenticated('client token not accepted');
  }

  private prepare(call: grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>, sink: CallSink, streaming: boolean, wantProgress: boolean): PendingCall | EasyRemoteError {
    const denied = this.authorizeClient(call.metadata);
    if (denied) return denied;
    const req = call.request;
    const entry = this.registry.functions.get(req.function);
    if (entry === undefined) {
      return req.function ? new FunctionNotFound(`function ${JSON.stringify(req.function)} is not registered`) : new InvalidArgument('CallRequest.function is empty');
    }
    if (!streaming && entry.config.kind === 'stream') {
      return new InvalidArgument(`${entry.name} is a stream (generator) function: call it with CallStream and iterate the values`);
    }
    if (req.args.length > this.maxPayloadBytes) {
      return new PayloadTooLarge(`arguments of ${req.args.length} bytes exceed the gateway's limit of ${this.maxPayloadBytes} bytes`);
    }
    const now = Date.now();
    const callerDeadline = call.getDeadline();
    const callerMs = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
    const ownMs = now + (entry.config.timeoutMs || this.defaultTimeoutMs);
    const deadline = Number.isFinite(callerMs) ? Math.min(callerMs, ownMs) : ownMs;
    return new PendingCall(this.nextCallId++, entry, req.args, req.options, callerMetadata(call.metadata), deadline, streaming, wantProgress, sink, performance.now(), call.getPeer());
  }

  private onCall(call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>): void {
    try {
      const pending = this.prepare(call, unarySink(callback), false, false);
      if (pending instanceof EasyRemoteError) {
        callback(toServiceError(pending) as grpc.ServiceError);
        return;
      }
      call.on('cancelled', () => this.dispatcher.cancel(pending));
      this.dispatcher.start(pending);
    } catch (err) {
      callback(toServiceError(toEasyRemoteError(err)) as grpc.ServiceError);
    }
  }

  private onCallStream(call: grpc.ServerWritableStream<CallRequest, StreamReply>): void {
    try {
      const pending = this.prepare(call, streamSink(call), true, true);
      if (pending instanceof EasyRemoteError) {
        call.destroy(toServiceError(pending) as unknown as Error);
        return;
      }
      call.on('cancelled', () => this.dispatcher.cancel(pending));
      this.dispatcher.start(pending);
    } catch (err) {
      call.destroy(toServiceError(toEasyRemoteError(err)) as unknown as Error);
    }
  }

  // ---- nodes ---------------------------------------------------------------------------

  private onNodeStream(stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>): void {
    let session: NodeSession | undefined;
    const peer = stream.getPeer();
    const bearer = bearerToken(stream.metadata);
    stream.on('data', (frame: NodeFrame) => {
      try {
        if (frame.register) {
          session = this.onRegister(stream, frame.register, session, peer, bearer);
          return;
        }
        if (session === undefined) {
          stream.write({ registered: { accepted: false, refusal: new InvalidArgument('the first frame on a node stream must be register').toDetail(), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: this.id } });
          stream.end();
          return;
        }
        if (session.state === 'closed') return;
        session.lastSeen = performance.now();
        this.onNodeFrame(session, frame);
      } catch (err) {
        this.log(`dropped a frame from ${session?.nodeId ?? peer}: ${(err as Error).message}`);
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

  private refuse(stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>, nodeId: string, err: EasyRemoteError): undefined {
    this.log(`refused node ${nodeId}: ${err.message}`);
    this.emit('node-refused', nodeId, err);
    stream.write({ registered: { accepted: false, refusal: err.toDetail(), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: this.id } });
    return undefined;
  }

  private onRegister(stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>, reg: Register, current: NodeSession | undefined, peer: string, bearer: string | undefined): NodeSession | undefined {
    const tokens = this.options.auth?.nodeTokens;
    if (tokens && tokens.length > 0) {
      const token = reg.token || bearer;
      if (!token || !tokens.includes(token)) return this.refuse(stream, reg.nodeId, new Unauthenticated(token ? 'node token not accepted' : 'missing node token'));
    }
    try {
      Registry.validate(reg.nodeId, reg.functions);
    } catch (err) {
      return this.refuse(stream, reg.nodeId, toEasyRemoteError(err));
    }
    if (current !== undefined) {
      // Re-registration on the same stream: same node, new function list.
      if (current.nodeId !== reg.nodeId) return this.refuse(stream, reg.nodeId, new InvalidArgument(`this stream is node ${current.nodeId}; it cannot become ${reg.nodeId}`));
      this.registry.setFunctions(current, reg.functions);
      this.sendRegistered(current);
      return current;
    }
    const existing = this.registry.sessions.get(reg.nodeId);
    if (existing !== undefined && existing.state !== 'closed') {
      if (reg.instanceId !== '' && existing.instanceId === reg.instanceId) {
        // The same process reconnected before we noticed its old stream die.
        this.endSession(existing, 'superseded by a reconnect');
        existing.stream.end();
      } else {
        return this.refuse(stream, reg.nodeId, new RegistrationRefused(`node id ${reg.nodeId} is already connected from ${existing.peer}`));
      }
    }
    const caps = reg.capabilities;
    const session = new NodeSession(
      reg.nodeId,
      reg.instanceId,
      stream,
      {
        cpuCores: caps?.cpuCores ?? 0,
        memoryTotalBytes: caps?.memoryTotalBytes ?? 0,
        gpus: caps?.gpus ?? [],
        labels: caps?.labels ?? {},
        costPerHour: caps?.costPerHour ?? 0,
      },
      performance.now(),
      peer,
    );
    this.registry.sessions.set(session.nodeId, session);
    this.registry.setFunctions(session, reg.functions);
    this.sendRegistered(session);
    this.log(`node ${session.nodeId} joined from ${peer} with ${reg.functions.map((f) => f.name).join(', ')}`);
    this.emit('node-joined', session);
    return session;
  }

  private sendRegistered(session: NodeSession): void {
    session.send({ registered: { accepted: true, refusal: undefined, heartbeatMs: this.heartbeatMs, leaseMs: this.leaseMs, maxPayloadBytes: this.maxPayloadBytes, gatewayId: this.id } });
  }

  private onNodeFrame(session: NodeSession, frame: NodeFrame): void {
    if (frame.result) this.dispatcher.onResult(session, frame.result);
    else if (frame.chunk) this.dispatcher.onChunk(session, frame.chunk);
    else if (frame.end) this.dispatcher.onEnd(session, frame.end);
    else if (frame.error) this.dispatcher.onError(session, frame.error);
    else if (frame.progress) this.dispatcher.onProgress(session, frame.progress);
    else if (frame.heartbeat) {
      const hb = frame.heartbeat;
      for (const f of hb.functions) session.reported.set(f.name, { inFlight: f.inFlight, queued: f.queued });
      if (hb.hasTelemetry) {
        session.telemetry = { cpuPercent: hb.cpuPercent, memoryUsedBytes: hb.memoryUsedBytes, memoryTotalBytes: hb.memoryTotalBytes, gpus: hb.gpus, receivedAt: performance.now() };
      }
    } else if (frame.pong) {
      const rtt = performance.now() - frame.pong.nonce / 1000;
      if (rtt >= 0 && rtt < 60_000) session.rttMs = session.rttMs === undefined ? rtt : session.rttMs + 0.2 * (rtt - session.rttMs);
    } else if (frame.drain) {
      if (session.state === 'active') session.state = 'draining';
    }
  }

  private endSession(session: NodeSession, why: string): void {
    if (session.state === 'closed') return;
    const clean = session.attempts.size === 0 && why === 'stream ended';
    session.state = 'closed';
    session.endReason = why;
    this.registry.remove(session);
    this.dispatcher.onSessionLost(session, why);
    this.log(`node ${session.nodeId} ${clean ? 'left' : `lost (${why})`}`);
    this.emit('node-left', session, clean ? 'left' : 'lost');
  }

  /** Leases and pings, once per heartbeat interval. */
  private sweep(): void {
    const now = performance.now();
    for (const session of [...this.registry.sessions.values()]) {
      if (now - session.lastSeen > this.leaseMs) {
        this.endSession(session, `no frame for ${Math.round(now - session.lastSeen)} ms (lease ${this.leaseMs} ms)`);
        session.stream.end();
        continue;
      }
      session.send({ ping: { nonce: Math.round(now * 1000) } });
    }
  }
}

function chain<A extends unknown[]>(a: ((...args: A) => void) | undefined, b: ((...args: A) => void) | undefined) {
  if (!a) return b;
  if (!b) return a;
  return (...args: A) => {
    a(...args);
    b(...args);
  };
}
