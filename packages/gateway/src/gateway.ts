// The gateway's composition root: builds the parts, wires them once, starts and stops
// them. Nodes dial the NodeLink service and keep one stream each; clients call the
// Gateway service; operators use the Admin service and the HTTP API. Everything on the
// per-call path stays in memory: no payload decoding, no disk, no logging.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { createLogger, keepHeapHeadroom, type Logger, type NodeInfo } from '@easyremote/protocol';
import { AdminApi } from './api/admin-api.js';
import { CallIntake } from './api/call-intake.js';
import { SessionService } from './api/session-service.js';
import { bindGrpcServer, shutdownGrpcServer, tlsCredentials } from './api/grpc-server.js';
import { grpcServices } from './api/grpc-services.js';
import { HttpApi } from './api/http-server.js';
import { NodeLinkService } from './api/node-link-service.js';
import { NodeEvents, type GatewayEvents } from './api/node-events.js';
import { peersDocument } from './api/peers.js';
import { Readiness } from './api/readiness.js';
import { Authenticator } from './auth/authenticator.js';
import { PrincipalLimits } from './auth/principal-limits.js';
import { ResultCache } from './cache/result-cache.js';
import { AdmissionQueue } from './calls/admission-queue.js';
import { Dispatcher } from './calls/dispatcher.js';
import { FinishedCalls } from './calls/finished-calls.js';
import { OpenCalls } from './calls/open-calls.js';
import { systemClock, type Clock } from './clock.js';
import { NodeHealthMonitor } from './health/health-monitor.js';
import { OutlierDetector } from './health/outlier-detector.js';
import { OutlierFeedback } from './health/outlier-feedback.js';
import { LookAside } from './lookaside/look-aside.js';
import { AlertLog } from './metrics/advisor.js';
import { AlertLoop } from './metrics/alert-loop.js';
import { createMetricsRecorder } from './metrics/metrics-setup.js';
import type { MetricsRecorder } from './metrics/recorder.js';
import { checkExposure, checkOptions, gatewaySettings, type GatewayOptions, type GatewaySettings, type StopOptions } from './options.js';
import { Registry } from './registry/registry.js';
import { Router } from './routing/router.js';
import { CertificateFiles, type ReloadResult } from './tls/certificate-files.js';

export { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_HOST, DEFAULT_PORT, type GatewayOptions, type GatewayTlsOptions, type StopOptions } from './options.js';
export type { ReloadResult } from './tls/certificate-files.js';
export { PortInUseError } from './api/listen-failure.js';
export type { GatewayEvents };
export type NodeSummary = NodeInfo;

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly id = randomUUID();
  readonly settings: GatewaySettings;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly detector: OutlierDetector;
  readonly health: NodeHealthMonitor;
  readonly router: Router;
  readonly admission: AdmissionQueue;
  readonly dispatcher: Dispatcher;
  readonly metrics: MetricsRecorder;
  readonly cache: ResultCache;
  readonly alerts: AlertLog;
  readonly api: AdminApi;
  readonly lookAside: LookAside;
  /** Where the gateway logs (its lines carry `component` and `gatewayId`); code embedding it may log through it too. */
  readonly logger: Logger;
  private readonly auth: Authenticator;
  private readonly nodeLinks: NodeLinkService;
  private readonly intake: CallIntake;
  private readonly sessions: SessionService;
  private readonly alertLoop: AlertLoop;
  private readonly open: OpenCalls;
  private readonly server: grpc.Server;
  private readonly certificates: CertificateFiles | undefined;
  private readonly readiness: Readiness;
  private http: HttpApi | undefined;
  private boundPort = 0;
  private httpBoundPort = 0;
  private stopping: Promise<void> | undefined;
  private releaseHeadroom = () => {};
  private readonly onHangup = () => void this.reloadCertificates('SIGHUP');

  constructor(private readonly options: GatewayOptions = {}) {
    super();
    const settings = (this.settings = gatewaySettings(options));
    checkOptions(settings, options);
    const clock = (this.clock = options.clock ?? systemClock);
    const logger = (this.logger = createLogger('gateway', options.logger).child({ gatewayId: this.id }));
    this.auth = new Authenticator(options.auth);
    // Read now: a gateway configured with unreadable or mismatched certificate files does not start.
    this.certificates = options.tls && new CertificateFiles({ cert: options.tls.cert, key: options.tls.key, clientCa: options.tls.clientCa }, { watchIntervalMs: options.tls.watchIntervalMs, logger });
    const nodeCertificates = options.tls?.nodeCertificates === true;

    const figures = { nodes: () => this.registry.sessions.size, nodeStates: () => this.health.nodes(), inFlight: () => this.dispatcher.inFlight, cache: () => this.cache.stats(), lookAside: () => this.lookAside.figures() };
    this.metrics = createMetricsRecorder(options.metrics, clock, logger, figures);
    this.cache = new ResultCache({ ...options.cache, clock: () => clock.epochMs() });
    this.registry = new Registry(options.functions, { strategy: settings.defaultStrategy, retryCount: settings.retryCount }, { clock, providerGapMs: settings.providerGapMs });
    this.detector = new OutlierDetector({ ...options.outlierDetection, now: () => clock.now(), providersOf: (fn) => this.registry.functions.get(fn)?.providers.size ?? 0 });
    this.health = new NodeHealthMonitor(this.registry, this.detector, { leaseMs: settings.leaseMs, availableThreshold: options.availableThreshold, clock });
    this.router = new Router({ health: this.health, random: options.random ?? Math.random, clock, location: options.location });
    this.admission = new AdmissionQueue(settings.queueSize, settings.queueBytes);
    this.readiness = new Readiness(() => this.metrics.store?.health());
    const events = new NodeEvents(this, this.metrics, logger);
    const deferFlush = options.coalesceFrames === false ? (flush: () => void) => flush() : undefined;
    const limits = new PrincipalLimits(clock);
    const open = (this.open = new OpenCalls(clock));
    const finished = new FinishedCalls(limits, open, this.metrics);
    this.dispatcher = new Dispatcher({ router: this.router, admission: this.admission, attempts: new OutlierFeedback(this.detector), recorder: finished, clock, providerGapMs: settings.providerGapMs, maxResultBytes: settings.maxPayloadBytes });
    const linkSettings = { gatewayId: this.id, heartbeatMs: settings.heartbeatMs, leaseMs: settings.leaseMs, maxPayloadBytes: settings.maxPayloadBytes, slowStartMs: settings.slowStartMs, deferFlush, nodeCertificates };
    this.nodeLinks = new NodeLinkService({ registry: this.registry, dispatcher: this.dispatcher, detector: this.detector, auth: this.auth, clock, observer: events.observer(), settings: linkSettings });
    const intakeSettings = { maxPayloadBytes: settings.maxPayloadBytes, defaultTimeoutMs: settings.defaultTimeoutMs, startupGraceMs: settings.startupGraceMs, maxAwaiting: settings.queueSize };
    this.intake = new CallIntake({ registry: this.registry, dispatcher: this.dispatcher, cache: this.cache, metrics: this.metrics, recorder: finished, limits, open, clock, settings: intakeSettings });
    const thresholds = options.alerts?.thresholds ?? {};
    this.alerts = new AlertLog({ webhookUrl: options.alerts?.webhookUrl, clock: () => clock.epochMs() });
    const peers = () => peersDocument({ id: this.id, address: () => this.address, peers: options.peers ?? [], nodes: () => [...this.registry.sessions.values()].filter((s) => s.kind === 'node') });
    this.api = new AdminApi({ health: this.health, registry: this.registry, admission: this.admission, detector: this.detector, metrics: this.metrics, cache: this.cache, alerts: this.alerts, thresholds, clock,
      drain: (nodeId, by) => this.nodeLinks.drain(nodeId, by), audit: (kind, nodeId, fn, detail) => events.record(kind, nodeId, fn, detail), peers, backends: () => this.lookAside.documents() });
    this.alertLoop = new AlertLoop(this.alerts, () => this.api.figures(), thresholds, clock, (err) => logger.error({ reason: err.message }, 'alert evaluation failed'));

    // Wiring: capacity that frees up lets waiting calls move; events reach logs and metrics.
    this.registry.on('provider-added', (entry) => this.dispatcher.pump(entry));
    this.registry.on('config-conflict', (entry, conflict) => logger.warn({ function: entry.name }, conflict));
    events.watch(this.detector, clock, (fn) => {
      const entry = this.registry.functions.get(fn);
      if (entry) this.dispatcher.pump(entry);
    });
    this.alerts.on('alert', (a) => logger.warn({ severity: a.severity, alert: a.kind }, a.message));

    this.sessions = new SessionService(this.intake, clock, this.auth, settings.maxPayloadBytes, deferFlush);
    this.lookAside = new LookAside({ registry: this.registry, router: this.router, health: this.health, detector: this.detector, limits, clock, random: options.random ?? Math.random, observer: events.observer(), freed: (entry) => this.dispatcher.pump(entry), settings: { ...settings, gatewayId: this.id, pickTtlMs: options.lookAside?.pickTtlMs } });
    this.server = grpcServices({ maxPayloadBytes: settings.maxPayloadBytes, auth: this.auth, clock, metrics: this.metrics, nodeCertificates, nodeLinks: this.nodeLinks, intake: this.intake, sessions: this.sessions, api: this.api, lookAside: this.lookAside });
  }

  /**
   * Listens on the gRPC port, then the HTTP port. A start that fails releases every port it
   * bound and closes the metrics database (the gateway is then stopped); a port in use is a
   * `PortInUseError`, one line naming the port and the process that holds it.
   */
  async start(): Promise<void> {
    if (this.stopping !== undefined) throw new Error('this gateway was stopped; create a new one');
    const { host, port } = this.settings;
    const certificates = this.certificates;
    try {
      checkExposure(host, {
        tls: certificates !== undefined,
        nodesAuthenticated: this.auth.nodesAuthenticate || this.options.tls?.nodeCertificates === true,
        clientsAuthenticated: this.auth.callersAuthenticate,
        insecure: this.options.insecure === true,
      });
      this.boundPort = await bindGrpcServer(this.server, host, port, certificates && tlsCredentials(certificates));
      this.intake.started();
      this.nodeLinks.startSweeping();
      if (this.options.httpPort !== undefined) {
        const http = (this.http = new HttpApi(this.api, this.metrics.prometheus, (header) => this.auth.client(header), () => this.readiness.check(), this.clock, certificates?.material));
        certificates?.onChange((material) => http.setCertificate(material));
        this.httpBoundPort = await http.listen(this.options.httpPort, host);
      }
    } catch (err) {
      await this.stop({ graceMs: 0 });
      throw err;
    }
    if (certificates !== undefined) {
      certificates.watch();
      process.on('SIGHUP', this.onHangup);
    }
    this.alertLoop.start(this.options.alerts?.intervalMs);
    this.releaseHeadroom = keepHeapHeadroom(this.options.heapHeadroomBytes);
    this.readiness.state = 'serving';
    this.logger.info({ address: this.address, httpPort: this.http && this.httpBoundPort, tls: certificates !== undefined }, 'gateway listening');
  }

  /**
   * Reads the certificate files again (also done when they change, and on SIGHUP while
   * the gateway runs). New connections get the new certificate; a reload that fails keeps
   * the one in use and logs why.
   */
  reloadCertificates(why = 'asked'): ReloadResult {
    if (this.certificates === undefined) return { status: 'failed', error: new Error('this gateway has no tls configured') };
    return this.certificates.reload(why);
  }

  /**
   * New calls are refused GATEWAY_UNAVAILABLE, /readyz answers 503, calls in flight get `graceMs`
   * to finish (then CANCELLED), every metrics row is written, the HTTP port closes last. Called
   * again while stopping: the same promise; a shorter grace cuts the wait short (0: now).
   */
  stop(options: StopOptions = {}): Promise<void> {
    const graceMs = options.graceMs ?? this.settings.shutdownGraceMs;
    if (this.stopping !== undefined) {
      void this.open.settled(graceMs);
      return this.stopping;
    }
    return (this.stopping = this.shutdown(graceMs));
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.readiness.state = 'stopping';
    this.logger.info({ openCalls: this.open.size, graceMs }, 'gateway stopping');
    this.alertLoop.stop();
    process.off('SIGHUP', this.onHangup);
    this.releaseHeadroom();
    this.certificates?.unwatch();
    const reason = 'the gateway is stopping';
    // Clients send new calls to other gateways; nodes keep serving through theirs.
    this.sessions.goAway(reason);
    this.nodeLinks.goAway(reason);
    this.intake.close(reason);
    const cut = await this.open.settled(graceMs);
    if (cut > 0) this.logger.warn({ calls: cut, graceMs }, 'calls still in flight after the grace are ended');
    this.dispatcher.shutdown();
    this.nodeLinks.close();
    this.sessions.close();
    await shutdownGrpcServer(this.server);
    // After the last call ended: every buffered row reaches the database.
    this.metrics.close();
    await this.alerts.drain();
    await this.http?.close();
    this.logger.info('gateway stopped');
  }

  /** Calls taken in and not yet finished (what a graceful stop waits for). */
  get openCalls(): number {
    return this.open.size;
  }

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${this.settings.host}:${this.boundPort}`;
  }

  /** Port of the HTTP API (after start, when httpPort was given). */
  get httpPort(): number {
    return this.httpBoundPort;
  }

  /** Every connected node with its health, load, telemetry and functions. */
  nodes(): NodeInfo[] {
    return this.health.nodes();
  }

  /** Asks a node to drain: no new calls go to it; it leaves once its calls finish. */
  drainNode(nodeId: string): boolean {
    return this.nodeLinks.drain(nodeId);
  }

  /** Checks the alert conditions now (also runs on a timer). */
  evaluateAlerts(): void {
    this.alertLoop.evaluate();
  }
}
