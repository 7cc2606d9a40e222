// The gateway: a gRPC server with two services. Nodes dial NodeLink and keep one stream
// each; clients call Gateway.Call / Gateway.CallStream. Everything on the per-call path
// stays in memory: no payload decoding, no disk, no logging.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  DEADLINE_GRACE_METADATA_KEY,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  ENVELOPE_SLACK_BYTES,
  EasyRemoteError,
  FunctionNotFound,
  AdminService,
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
import { AdminApi } from './api/admin-api.js';
import { adminHandlers } from './api/admin-service.js';
import { HttpApi } from './api/http-server.js';
import { bearerToken, callerMetadata } from './api/metadata.js';
import { makeCacheKey, ResultCache } from './cache/result-cache.js';
import { AlertLog, evaluateAlerts, type AdvisorThresholds } from './metrics/advisor.js';
import type { CallRecord } from './metrics/call-record.js';
import { PrometheusMetrics } from './metrics/prometheus.js';
import { MetricsRecorder } from './metrics/recorder.js';
import { MetricsStore, type MetricsStoreOptions } from './metrics/store.js';
import { streamSink, unarySink } from './api/call-sinks.js';
import type { CallSink } from './calls/call-sink.js';
import { AdmissionQueue, DEFAULT_GATEWAY_QUEUE_SIZE } from './calls/admission-queue.js';
import { Dispatcher, type DispatcherHooks } from './calls/dispatcher.js';
import { PendingCall } from './calls/pending-call.js';
import { NodeHealthMonitor, type NodeHealth } from './health/health-monitor.js';
import { OutlierDetector, type OutlierDetectorOptions } from './health/outlier-detector.js';
import { DEFAULT_SLOW_START_WINDOW_MS } from './health/slow-start.js';
import { DEFAULT_STRATEGY, type FunctionConfigOverride, type FunctionEntry } from './registry/function-entry.js';
import { hasStrategy, strategyNames } from './strategies/registry.js';
import { NodeSession } from './registry/node-session.js';
import { Registry } from './registry/registry.js';
import { Router } from './routing/router.js';

export const DEFAULT_PORT = 50051;
export const DEFAULT_HOST = '127.0.0.1';
/** Time limit for calls when neither the caller nor the function sets one. */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;
/** Retries after a lost node or a node-side refusal, for functions that set none. */
export const DEFAULT_RETRY_COUNT = 2;
/** The embedded metrics database, relative to the working directory. */
export const DEFAULT_METRICS_PATH = 'easyremote-metrics.db';
/**
 * For callers that name no deadline grace (plain gRPC clients), the gateway ends a call
 * this long before their deadline (5% of the time left, 5 to 50 ms), so that usually its
 * DEADLINE_EXCEEDED closes the stream before the client resets it (see DEADLINE_GRACE_MS).
 */
export const DEADLINE_MARGIN = { share: 0.05, minMs: 5, maxMs: 50 } as const;
/** The most deadline grace a caller may claim. */
const MAX_DEADLINE_GRACE_MS = 5_000;
/** How often alerts are evaluated. */
export const DEFAULT_ALERT_INTERVAL_MS = 10_000;
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
  /** Retries per call for functions whose healthCheck sets no retryCount. */
  retryCount?: number;
  /** Strategy for functions that name none. */
  defaultStrategy?: string;
  /** Gateway-side configuration per function; overrides what nodes declare, calls override it. */
  functions?: Record<string, FunctionConfigOverride>;
  /** Calls per function that wait at the gateway when every provider is full (0 = refuse at once). */
  queueSize?: number;
  /** A node whose load (max of CPU and slot use) reaches this is avoided while others have room. */
  availableThreshold?: number;
  /** Ramp-up window for a node that joins or returns (ms; 0 = off). */
  slowStartMs?: number;
  /** Passive outlier detection (circuit breaking) per node and function. */
  outlierDetection?: Omit<OutlierDetectorOptions, 'providersOf' | 'now'>;
  /** This gateway's location label (preferLocal: true prefers nodes with the same). */
  location?: string;
  /**
   * Call metrics in SQLite: the file path (default ./easyremote-metrics.db), ':memory:',
   * or false for no database (live figures and Prometheus still work).
   */
  metrics?: false | (Partial<Omit<MetricsStoreOptions, 'clock' | 'onError'>> & { path?: string });
  /** Result cache for functions declared cacheable: total bytes, and the largest share one result may take. */
  cache?: { maxBytes?: number; maxEntryShare?: number };
  /** Port of the HTTP API (/api/..., /metrics); undefined = no HTTP server, 0 = any free port. */
  httpPort?: number;
  /** Alert evaluation: interval, thresholds and an optional webhook that receives each new alert. */
  alerts?: { intervalMs?: number; webhookUrl?: string; thresholds?: AdvisorThresholds };
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

export interface NodeSummary extends NodeHealth {
  peer: string;
  /** Seconds since the node joined. */
  uptimeS: number;
  functions: string[];
  capabilities: NodeSession['capabilities'];
}

export type NodeEventKind = 'joined' | 'left' | 'lost' | 'ejected' | 'readmitted' | 'draining' | 'refused';

export interface GatewayEvents {
  'node-joined': [NodeSession];
  'node-left': [NodeSession, string];
  'node-refused': [string, EasyRemoteError];
  /** Every node lifecycle and health event, for metrics and operators. */
  'node-event': [{ kind: NodeEventKind; nodeId: string; functionName: string; detail: string }];
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly id = randomUUID();
  readonly registry: Registry;
  readonly dispatcher: Dispatcher;
  readonly router: Router;
  readonly detector: OutlierDetector;
  readonly health: NodeHealthMonitor;
  readonly admission: AdmissionQueue;
  readonly metrics: MetricsRecorder;
  readonly cache: ResultCache;
  readonly alerts: AlertLog;
  readonly alertThresholds: AdvisorThresholds;
  readonly api: AdminApi;
  private http: HttpApi | undefined;
  private httpBoundPort = 0;
  private alertTimer: NodeJS.Timeout | undefined;
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
    const defaultStrategy = options.defaultStrategy ?? DEFAULT_STRATEGY;
    for (const [fn, cfg] of Object.entries<FunctionConfigOverride>({ '(default)': { strategy: defaultStrategy }, ...options.functions })) {
      for (const name of [cfg.strategy, cfg.fallbackStrategy]) {
        if (name && !hasStrategy(name)) throw new TypeError(`gateway config for ${fn}: unknown strategy ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`);
      }
    }
    this.registry = new Registry(options.functions, { strategy: defaultStrategy, retryCount: options.retryCount ?? DEFAULT_RETRY_COUNT });
    const now = () => performance.now();
    this.detector = new OutlierDetector({ ...options.outlierDetection, now, providersOf: (fn) => this.registry.functions.get(fn)?.providers.size ?? 0 });
    this.health = new NodeHealthMonitor(this.registry, this.detector, { leaseMs: this.leaseMs, availableThreshold: options.availableThreshold, now });
    this.router = new Router({
      random: options.random ?? Math.random,
      now,
      location: options.location,
      routable: (p, fn, healthCheck) => this.health.leaseAlive(p.session) && (!healthCheck || this.detector.isRoutable(p.session.nodeId, fn)),
      available: (p) => this.health.available(p),
    });
    this.dispatcher = new Dispatcher({ router: this.router });
    this.admission = new AdmissionQueue(
      options.queueSize ?? DEFAULT_GATEWAY_QUEUE_SIZE,
      (entry) => this.hasRoom(entry),
      (call) => this.dispatcher.redispatch(call),
    );
    this.wireHealth();

    // Opening the database first: a corrupt or unwritable file stops the gateway here, with its path in the error.
    const store = options.metrics === false ? undefined : new MetricsStore({ ...options.metrics, path: options.metrics?.path ?? DEFAULT_METRICS_PATH, onError: (e) => this.log(`metrics: ${e.message}`) });
    this.cache = new ResultCache({ maxBytes: options.cache?.maxBytes, maxEntryShare: options.cache?.maxEntryShare });
    const prometheus = new PrometheusMetrics({
      nodes: () => this.registry.sessions.size,
      inFlight: () => this.dispatcher.inFlight,
      cache: () => this.cache.stats(),
      droppedRows: () => store?.health().droppedRows ?? 0,
    });
    this.metrics = new MetricsRecorder(store, prometheus);
    this.alertThresholds = options.alerts?.thresholds ?? {};
    this.alerts = new AlertLog({ webhookUrl: options.alerts?.webhookUrl });
    this.alerts.on('alert', (a) => this.log(`alert ${a.severity}: ${a.message}`));
    this.api = new AdminApi(this);
    this.addHooks({ callFinished: (call, code, cached) => this.metrics.record(this.rowOf(call, code, cached)) });
    this.on('node-event', (e) => this.metrics.event({ at: Date.now(), nodeId: e.nodeId, kind: e.kind, functionName: e.functionName, detail: e.detail }));
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
    this.server.addService(AdminService, adminHandlers(this.api, (md) => this.authorizeClient(md)));
  }

  private hasRoom(entry: FunctionEntry): boolean {
    for (const p of entry.providers.values()) {
      if (p.session.state === 'active' && !p.full && this.health.routable(p, entry.name)) return true;
    }
    return false;
  }

  /** Outlier detection, admission queue and node events, hooked onto calls and the registry. */
  private wireHealth(): void {
    const event = (kind: NodeEventKind, nodeId: string, functionName = '', detail = '') => this.emit('node-event', { kind, nodeId, functionName, detail });
    this.addHooks({
      attemptStarted: (a) => {
        if (this.detector.state(a.provider.session.nodeId, a.call.entry.name) === 'half_open') this.detector.onDispatch(a.provider.session.nodeId, a.call.entry.name);
      },
      attemptFinished: ({ attempt, ok, countsForHealth, latencyMs, execMs }) => {
        const nodeId = attempt.provider.session.nodeId;
        const fn = attempt.call.entry.name;
        if (!attempt.call.entry.config.healthCheck.enabled) {
          // not watched
        } else if (countsForHealth || ok) this.detector.record(nodeId, fn, ok);
        else this.detector.releaseProbe(nodeId, fn);
        if (attempt.snapshot && attempt.context) {
          attempt.call.entry.strategy(attempt.strategy).observe?.({ nodeId, ok, latencyMs, execMs, candidate: attempt.snapshot, context: attempt.context });
        }
        this.admission.pump(attempt.call.entry);
      },
      callFinished: (call) => {
        if (call.queued) this.admission.remove(call);
      },
      enqueue: (call) => {
        if (!this.admission.enqueue(call)) return false;
        call.queued = true;
        return true;
      },
    });
    this.registry.on('provider-added', (entry) => this.admission.pump(entry));
    this.registry.on('config-conflict', (_entry, conflict) => this.log(`warning: ${conflict}`));
    this.detector.on('ejected', (e) => {
      this.log(`node ${e.nodeId} ejected for ${e.functionName} (${e.reason}) for ${Math.round(e.untilMs - performance.now())} ms`);
      event('ejected', e.nodeId, e.functionName, e.reason);
    });
    this.detector.on('readmitted', (e) => {
      this.log(`node ${e.nodeId} readmitted for ${e.functionName}`);
      event('readmitted', e.nodeId, e.functionName);
      const entry = this.registry.functions.get(e.functionName);
      if (entry) this.admission.pump(entry);
    });
    this.on('node-joined', (s) => event('joined', s.nodeId, '', s.peer));
    this.on('node-left', (s, how) => event(how === 'left' ? 'left' : 'lost', s.nodeId, '', s.endReason));
    this.on('node-refused', (nodeId, err) => event('refused', nodeId, '', err.message));
  }

  /** Hooks for later subsystems (metrics, health, admission). */
  addHooks(hooks: DispatcherHooks): void {
    const prev = this.dispatcher.hooks;
    this.dispatcher.hooks = {
      attemptStarted: chain(prev.attemptStarted, hooks.attemptStarted),
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
    // Half the heartbeat, so pings go out once per heartbeat; a quarter lease at most, for lease precision.
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(25, Math.min(this.heartbeatMs / 2, this.leaseMs / 4)));
    this.sweepTimer.unref();
    if (this.options.httpPort !== undefined) {
      this.http = new HttpApi(this.api, this.metrics.prometheus, (header) => this.authorizeClient(header === undefined ? undefined : header));
      this.httpBoundPort = await this.http.listen(this.options.httpPort, host);
    }
    this.alertTimer = setInterval(() => this.evaluateAlerts(), this.options.alerts?.intervalMs ?? DEFAULT_ALERT_INTERVAL_MS);
    this.alertTimer.unref();
  }

  /** Port of the HTTP API (after start, when httpPort was given). */
  get httpPort(): number {
    return this.httpBoundPort;
  }

  /** Checks the alert conditions now (also runs on a timer). */
  evaluateAlerts(): void {
    try {
      this.alerts.update(evaluateAlerts(this.api.figures(), this.alertThresholds));
    } catch (err) {
      this.log(`alert evaluation failed: ${(err as Error).message}`);
    }
  }

  private rowOf(call: PendingCall, errorCode: string, cached: boolean): CallRecord {
    return {
      finishedAt: Date.now(),
      functionName: call.entry.name,
      nodeId: cached ? '' : call.nodeId,
      strategy: cached ? '' : call.strategy,
      client: call.client,
      queueWaitMs: call.dispatchedAt > 0 ? call.dispatchedAt - call.arrivedAt : 0,
      execMs: cached ? 0 : call.execMs,
      totalMs: performance.now() - call.arrivedAt,
      success: errorCode === '',
      errorCode,
      cached,
      requestBytes: call.args.length,
      responseBytes: call.responseBytes,
      attempts: call.attempts,
    };
  }

  /** Calls refused before they became a PendingCall (unknown function, bad request) still leave a row. */
  private recordRefusal(functionName: string, err: EasyRemoteError, client: string, requestBytes: number, arrivedAt: number): void {
    this.metrics.record({
      finishedAt: Date.now(),
      functionName: functionName.slice(0, 128),
      nodeId: '',
      strategy: '',
      client,
      queueWaitMs: 0,
      execMs: 0,
      totalMs: performance.now() - arrivedAt,
      success: false,
      errorCode: err.code,
      cached: false,
      requestBytes,
      responseBytes: 0,
      attempts: 0,
    });
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
    clearInterval(this.alertTimer);
    this.dispatcher.shutdown();
    await this.http?.close();
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
    // After the last call ended: every buffered row reaches the database.
    this.metrics.close();
    await this.alerts.drain();
  }

  /** Every connected node with its health, load, telemetry and functions. */
  nodes(): NodeSummary[] {
    const now = performance.now();
    return [...this.registry.sessions.values()].map((s) => ({
      ...this.health.health(s),
      peer: s.peer,
      uptimeS: Math.round((now - s.joinedAt) / 1000),
      functions: [...this.registry.functions.values()].filter((f) => f.providers.get(s.nodeId)?.session === s).map((f) => f.name),
      capabilities: s.capabilities,
    }));
  }

  /** Asks a node to drain: no new calls go to it; it leaves once its calls finish. */
  drainNode(nodeId: string): boolean {
    const s = this.registry.sessions.get(nodeId);
    if (s === undefined || s.state !== 'active') return false;
    s.state = 'draining';
    s.send({ drain: { reason: 'operator' } });
    this.emit('node-event', { kind: 'draining', nodeId, functionName: '', detail: 'operator' });
    return true;
  }

  // ---- clients -------------------------------------------------------------------------

  private authorizeClient(credentials: grpc.Metadata | string | undefined): EasyRemoteError | undefined {
    const tokens = this.options.auth?.clientTokens;
    if (!tokens || tokens.length === 0) return undefined;
    const token = typeof credentials === 'object' ? bearerToken(credentials) : /^Bearer\s+(.+)$/i.exec(credentials?.trim() ?? '')?.[1];
    if (token === undefined) return new Unauthenticated('missing client token: send metadata authorization: Bearer <token>');
    return tokens.includes(token) ? undefined : new Unauthenticated('client token not accepted');
  }

  private prepare(
    call: grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>,
    makeSink: (cacheable: boolean) => CallSink,
    streaming: boolean,
    wantProgress: boolean,
  ): PendingCall | EasyRemoteError {
    const arrivedAt = performance.now();
    const req = call.request;
    const refuse = (err: EasyRemoteError) => {
      this.recordRefusal(req.function, err, call.getPeer(), req.args.length, arrivedAt);
      return err;
    };
    const denied = this.authorizeClient(call.metadata);
    if (denied) return refuse(denied);
    const entry = this.registry.functions.get(req.function);
    if (entry === undefined) {
      return refuse(req.function ? new FunctionNotFound(`function ${JSON.stringify(req.function)} is not registered`) : new InvalidArgument('CallRequest.function is empty'));
    }
    if (!streaming && entry.config.kind === 'stream') {
      return refuse(new InvalidArgument(`${entry.name} is a stream (generator) function: call it with CallStream and iterate the values`));
    }
    if (req.args.length > this.maxPayloadBytes) {
      return refuse(new PayloadTooLarge(`arguments of ${req.args.length} bytes exceed the gateway's limit of ${this.maxPayloadBytes} bytes`));
    }
    const now = Date.now();
    const callerDeadline = call.getDeadline();
    const callerMs = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
    const ownMs = now + (entry.config.timeoutMs || this.defaultTimeoutMs);
    const graceHeader = call.metadata.get(DEADLINE_GRACE_METADATA_KEY)[0];
    const grace = typeof graceHeader === 'string' ? Math.min(MAX_DEADLINE_GRACE_MS, Math.max(0, Number(graceHeader) || 0)) : 0;
    const margin = grace > 0 ? grace : Math.min(DEADLINE_MARGIN.maxMs, Math.max(DEADLINE_MARGIN.minMs, DEADLINE_MARGIN.share * (callerMs - now)), (callerMs - now) / 2);
    const deadline = Number.isFinite(callerMs) ? Math.min(callerMs - margin, ownMs) : ownMs;
    const cacheable = !streaming && entry.config.cacheable && entry.config.cacheTtlMs > 0 && !req.options?.noCache;
    return new PendingCall(this.nextCallId++, entry, req.args, req.options, callerMetadata(call.metadata), deadline, streaming, wantProgress, makeSink(cacheable), arrivedAt, call.getPeer());
  }

  private onCall(call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>): void {
    try {
      let cacheSink: PromiseSink | undefined;
      const pending = this.prepare(call, (cacheable) => (cacheable ? (cacheSink = new PromiseSink()) : unarySink(callback)), false, false);
      if (pending instanceof EasyRemoteError) {
        callback(toServiceError(pending) as grpc.ServiceError);
        return;
      }
      if (cacheSink !== undefined) {
        this.cachedCall(pending, cacheSink, unarySink(callback));
        return;
      }
      call.on('cancelled', () => this.dispatcher.cancel(pending));
      this.dispatcher.start(pending);
    } catch (err) {
      callback(toServiceError(toEasyRemoteError(err)) as grpc.ServiceError);
    }
  }

  /**
   * A cacheable function: identical concurrent calls share one computation and later ones
   * read the stored bytes. The computation is not tied to one caller's cancellation,
   * since others may be waiting for it; its deadline still applies. Errors are not cached.
   */
  private cachedCall(pending: PendingCall, computeSink: PromiseSink, reply: CallSink): void {
    const { entry } = pending;
    const key = makeCacheKey(entry.name, entry.config.version, pending.args);
    this.cache
      .getOrCompute(key, entry.config.cacheTtlMs, () => {
        this.dispatcher.start(pending);
        return computeSink.promise;
      })
      .then(
        ({ value, source }) => {
          if (source !== 'computed') this.metrics.record(this.rowOf(Object.assign(pending, { responseBytes: value.length }), '', true));
          reply.result(value, source === 'computed' ? pending.nodeId : '', source !== 'computed');
        },
        (err: unknown) => {
          const e = toEasyRemoteError(err);
          // A waiter that joined a failed computation was not recorded by the dispatcher.
          if (!pending.done) this.metrics.record(this.rowOf(pending, e.code, false));
          reply.error(e);
        },
      );
  }

  private onCallStream(call: grpc.ServerWritableStream<CallRequest, StreamReply>): void {
    try {
      const pending = this.prepare(call, () => streamSink(call), true, true);
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
    session.slowStartMs = this.options.slowStartMs ?? DEFAULT_SLOW_START_WINDOW_MS;
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
      if (session.state === 'active') {
        session.state = 'draining';
        this.emit('node-event', { kind: 'draining', nodeId: session.nodeId, functionName: '', detail: 'node' });
      }
    }
  }

  private endSession(session: NodeSession, why: string): void {
    if (session.state === 'closed') return;
    const clean = session.attempts.size === 0 && why === 'stream ended';
    session.state = 'closed';
    session.endReason = why;
    this.registry.remove(session);
    this.dispatcher.onSessionLost(session, why);
    this.detector.forgetNode(session.nodeId);
    this.log(`node ${session.nodeId} ${clean ? 'left' : `lost (${why})`}`);
    this.emit('node-left', session, clean ? 'left' : 'lost');
  }

  /** Leases (checked every leaseMs / 4) and pings (once per heartbeat interval). */
  private sweep(): void {
    const now = performance.now();
    for (const session of [...this.registry.sessions.values()]) {
      if (now - session.lastSeen > this.leaseMs) {
        this.endSession(session, `no frame for ${Math.round(now - session.lastSeen)} ms (lease ${this.leaseMs} ms)`);
        session.stream.end();
        continue;
      }
      // The sweep runs more often than the heartbeat (lease precision); pings follow the heartbeat.
      if (now - session.lastPingAt >= this.heartbeatMs * 0.9) {
        session.lastPingAt = now;
        session.send({ ping: { nonce: Math.round(now * 1000) } });
      }
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

/** Collects a unary outcome as a promise (the cache's compute function). */
class PromiseSink implements CallSink {
  private resolveFn!: (value: Buffer) => void;
  private rejectFn!: (err: EasyRemoteError) => void;
  readonly promise = new Promise<Buffer>((resolve, reject) => {
    this.resolveFn = resolve;
    this.rejectFn = reject;
  });
  result(payload: Buffer): void {
    this.resolveFn(payload);
  }
  chunk(): boolean {
    return true;
  }
  progress(): void {}
  end(): void {
    this.resolveFn(Buffer.alloc(0));
  }
  error(err: EasyRemoteError): void {
    this.rejectFn(err);
  }
  onDrain(): void {}
}
