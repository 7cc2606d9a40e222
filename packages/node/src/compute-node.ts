// A compute node: the public face. It holds the node's functions (run by one CallRunner,
// with one set of limits) and one GatewayLink per gateway; each link dials out, registers
// the node and hands the calls it receives to the runner. Every gateway gets the same
// functions, and every heartbeat reports the node's whole load (all gateways' calls), so
// each gateway routes by what the node really carries.
import { EventEmitter, once } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import {
  channelSecurity,
  createLogger,
  EasyRemoteError,
  expandGatewayAddresses,
  checkHeapHeadroomBytes,
  keepHeapHeadroom,
  pemIdentity,
  PROTOCOL_VERSION,
  readPem,
  targetChannelOptions,
  type AddressLookup,
  type GatewayLinkState,
  type GatewayTarget,
  type Heartbeat,
  type Logger,
  type LoggerOption,
  type NodeTls,
  type Register,
} from '@easyremote/protocol';
import type { BackoffOptions } from './backoff.js';
import { CallRunner, SYSTEM_CLOCK } from './call-runner.js';
import { DirectServer } from './direct/direct-server.js';
import type { DirectOptions } from './direct/direct-options.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, FirstRegistration } from './first-registration.js';
import { GatewayLink, type GatewayLinkHelper } from './gateway-link.js';
import { validateOptions, type RemoteOptions } from './options.js';
import { isGeneratorFunction, toSpec, type Handler } from './registered-function.js';
import { remoteMethodsOf } from './remote.js';
import { WorkerPool } from './worker/worker-pool.js';
import { SystemTelemetryProvider, TelemetrySampler, type StaticCapabilities, type TelemetryProvider } from './telemetry/index.js';

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;

export interface ComputeNodeOptions {
  /** Gateway address, host:port. Alone, or beside `gateways` (it counts as the first of them). */
  gateway?: string;
  /**
   * Several gateways, host:port each: the node keeps a link to every one, registers the
   * same functions on each, and goes on serving through the others when one is lost. A
   * name that resolves to several addresses of one family stands for each of them
   * (resolved once, at start). docs/several-gateways.md.
   */
  gateways?: string[];
  /** How host names are resolved when start() expands them (the system resolver by default). */
  lookup?: AddressLookup;
  /** Stable identity of this node; defaults to the one its TLS certificate names, else hostname-pid. */
  nodeId?: string;
  /** Sent in the register frame; gateways configured with a node token require it. */
  token?: string;
  /** Free-form labels: location, zone, ... (used by latency_based preferLocal and requirements). */
  labels?: Record<string, string>;
  /** Cost of this machine per hour (cost_aware); a function's own costPerHour overrides it. */
  costPerHour?: number;
  /** Calls running at once on this node across all functions (default unlimited). */
  maxConcurrent?: number;
  /** Overrides the heartbeat interval the gateway asks for. */
  heartbeatMs?: number;
  /**
   * Where CPU/memory/GPU figures come from: systeminformation by default, an injected
   * provider in tests and simulations, or false to send none.
   */
  telemetry?: TelemetryProvider | false;
  /** How often telemetry is sampled, ms (default 1000). */
  telemetryIntervalMs?: number;
  /** Delays between reconnects: exponential from `initialMs` (100) to `maxMs` (5000), half of each random. */
  backoff?: BackoffOptions;
  /**
   * How long `start()` waits for a gateway to accept the node before it rejects with
   * GATEWAY_UNAVAILABLE naming the address (and the node stops), ms. Default 30,000; 0 =
   * wait as long as it takes. Only the first registration: a node that was registered
   * reconnects for as long as it runs.
   */
  connectTimeoutMs?: number;
  /**
   * Lifecycle logging (connecting, registered, refused, disconnected, reconnecting,
   * rate-limited, draining, stopped); never one line per call. A pino `Logger` of your own
   * (lines get `component: "node"` and `nodeId`), or `{ level, format, destination }` for the
   * default one: pino on stderr at $EASYREMOTE_LOG_LEVEL (default `info`), JSON lines unless
   * stderr is a terminal. See docs/operations.md.
   */
  logger?: LoggerOption;
  /**
   * Connect with TLS and verify the gateway: `{ ca, serverName }` as the client's option, or
   * `true` for the system roots; with `cert` and `key` (file paths, or PEM text or bytes)
   * the node presents its certificate, which gateways that require node certificates
   * take the node's id from (its first DNS subjectAltName, else URI, else CN).
   */
  tls?: NodeTls;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Also serve clients directly on an address of the node's own (look-aside mode, see
   * docs/look-aside.md): `{ listen: '0.0.0.0:7001', advertise: 'host:7001' }`, with the
   * gateway's token and TLS rules. Calls from both paths share the node's limits.
   */
  direct?: DirectOptions;
  /**
   * While the node runs, V8 may let its heap grow this many bytes past what survived the
   * last full collection before the next one (default 64 MiB; 0 leaves V8's own choice), as
   * long as that is under 4 times this. Receiving and returning large payloads otherwise
   * runs a full collection every few MB. Process-wide; docs/operations.md, "Large payloads".
   */
  heapHeadroomBytes?: number;
}

/** The node id a node's own certificate names, if it has one. */
function certificateNodeId(tls: NodeTls | undefined): string | undefined {
  if (tls === undefined || tls === true || tls.cert === undefined) return undefined;
  return pemIdentity(readPem(tls.cert, 'tls.cert'));
}

type State = 'new' | 'running' | 'draining' | 'stopped';

export interface NodeEvents {
  registered: [{ gatewayId: string }];
  disconnected: [{ reason: string }];
  refused: [EasyRemoteError];
  error: [Error];
  /** No call in progress or waiting. */
  idle: [];
  /**
   * The node stopped: `reason` is `stopped` (stop()), `drained` (drain(), or a gateway
   * asked it to drain), `refused` (every gateway refused it for good) or `connect timeout`.
   * A drained node's links may still be sending its last results; drain() resolves after.
   */
  stopped: [{ reason: string }];
}

export class ComputeNode extends EventEmitter<NodeEvents> {
  readonly nodeId: string;
  private readonly instanceId = randomUUID();
  private readonly runner: CallRunner;
  /** One per gateway, made at start() once the addresses are resolved. */
  private links: GatewayLink[] = [];
  /** The gateway addresses as given, `gateway` first. */
  readonly gatewayAddresses: readonly string[];
  private readonly linkHelper: GatewayLinkHelper;
  private readonly direct: DirectServer | undefined;
  private state: State = 'new';
  private releaseHeadroom = () => {};
  /** Where the node logs (its lines carry `component` and `nodeId`); code running it may log through it too. */
  readonly logger: Logger;
  private firstRegistration?: FirstRegistration;
  private drained?: Promise<void>;
  private readonly sampler: TelemetrySampler | undefined;
  private readonly telemetry: TelemetryProvider | undefined;
  private capabilities: StaticCapabilities = { cpuCores: 0, memoryTotalBytes: 0, gpus: [] };

  constructor(private readonly options: ComputeNodeOptions) {
    super();
    this.nodeId = options.nodeId ?? certificateNodeId(options.tls) ?? `${hostname()}-${process.pid}`;
    const timeout = options.connectTimeoutMs;
    if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) throw new TypeError(`connectTimeoutMs must be a number >= 0 (0 = no limit), got ${String(timeout)}`);
    checkHeapHeadroomBytes(options.heapHeadroomBytes, 'node');
    this.logger = createLogger('node', options.logger).child({ nodeId: this.nodeId });
    this.runner = new CallRunner({ nodeId: this.nodeId, maxConcurrent: options.maxConcurrent, onIdle: () => this.emit('idle') });
    this.telemetry = options.telemetry === false ? undefined : (options.telemetry ?? new SystemTelemetryProvider());
    this.sampler = this.telemetry ? new TelemetrySampler(this.telemetry, { intervalMs: options.telemetryIntervalMs }) : undefined;
    this.direct = options.direct && new DirectServer(options.direct, this.runner, this.nodeId);
    this.gatewayAddresses = gatewayList(options);
    this.linkHelper = this.makeLinkHelper();
  }

  /** Registers one function without decorators. */
  register(name: string, handler: Handler, options: RemoteOptions = {}, thisArg?: unknown): this {
    const fnName = options.name ?? name;
    if (!NAME_PATTERN.test(fnName)) {
      throw new TypeError(`invalid function name ${JSON.stringify(fnName)}: letters, digits, _ . - (max 128), starting with a letter or _`);
    }
    if (typeof handler !== 'function') throw new TypeError(`${fnName}: handler must be a function`);
    validateOptions(fnName, options);
    if (this.runner.has(fnName)) throw new TypeError(`function ${fnName} is already registered on this node`);
    const kind = options.stream || isGeneratorFunction(handler) ? 'stream' : 'unary';
    this.runner.add({ name: fnName, handler, thisArg, options, kind });
    this.functionsChanged();
    return this;
  }

  /**
   * Registers a CPU-bound function that runs in worker threads: `module` is a file URL or
   * path of an ES module and `exportName` the function it exports. Heartbeats and other
   * calls go on while it computes; a cancelled call terminates its thread. The handler
   * has no currentCall() context in the worker. Threads: `maxConcurrent` (default 1).
   */
  registerWorker(name: string, module: string | URL, exportName: string, options: RemoteOptions = {}): this {
    const fnName = options.name ?? name;
    if (!NAME_PATTERN.test(fnName)) throw new TypeError(`invalid function name ${JSON.stringify(fnName)}`);
    if (options.stream) throw new TypeError(`${fnName}: worker functions cannot stream`);
    const opts = { ...options, maxConcurrent: options.maxConcurrent ?? 1 };
    validateOptions(fnName, opts);
    if (this.runner.has(fnName)) throw new TypeError(`function ${fnName} is already registered on this node`);
    const url = module instanceof URL ? module.href : module.startsWith('file:') ? module : new URL(module, `file://${process.cwd()}/`).href;
    const pool = new WorkerPool(fnName, url, exportName, opts.maxConcurrent);
    const handler: Handler = () => {
      throw new Error(`${fnName} runs in a worker thread`);
    };
    this.runner.add({ name: fnName, handler, thisArg: undefined, options: opts, kind: 'unary', pool });
    this.functionsChanged();
    return this;
  }

  /** Registers every @remote method of a service instance. */
  serve(instance: object): this {
    const methods = remoteMethodsOf(instance);
    if (methods.length === 0) throw new TypeError(`${instance.constructor.name} has no @remote methods`);
    for (const { key, options } of methods) {
      this.register(key, (instance as Record<string, Handler>)[key]!, options, instance);
    }
    return this;
  }

  /**
   * Connects and resolves once a gateway accepted the registration; reconnects by itself
   * afterwards. Rejects, and the node stops, on a refusal no retry fixes (UNAUTHENTICATED,
   * PERMISSION_DENIED, INVALID_ARGUMENT), on REGISTRATION_REFUSED when the node id is still
   * taken after the time the gateway said a stale session of this node would need to
   * expire, and with GATEWAY_UNAVAILABLE when nothing accepted it within `connectTimeoutMs`.
   */
  start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`node ${this.nodeId} already started`);
    if (this.runner.functions.length === 0) throw new Error(`node ${this.nodeId} has no functions to serve`);
    const first = (this.firstRegistration = new FirstRegistration({
      address: this.gatewayAddresses.join(', '),
      nodeId: this.nodeId,
      connectTimeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      clock: SYSTEM_CLOCK,
      gaveUp: (err) => this.gaveUp(err),
    }));
    this.state = 'running';
    this.releaseHeadroom = keepHeapHeadroom(this.options.heapHeadroomBytes);
    // Listening first: the register frame advertises the direct address.
    const listening = this.direct?.listen() ?? Promise.resolve();
    // The lookup never fails (a name that does not resolve is kept as given): a rejection is the direct listen's.
    void Promise.all([expandGatewayAddresses(this.gatewayAddresses, this.options.lookup), this.prepareTelemetry(), listening]).then(
      ([targets]) => {
        if (this.state !== 'running') return;
        this.links = targets.map((target) => this.link(target));
        for (const link of this.links) link.start();
      },
      () => this.shutdown('direct listen failed'),
    );
    return Promise.all([first.promise, listening]).then(() => undefined);
  }

  private link(target: GatewayTarget): GatewayLink {
    const o = this.options;
    const secure = channelSecurity(o.tls).secure;
    const serverName = o.tls === undefined || o.tls === true ? undefined : o.tls.serverName;
    const channelOptions = { ...targetChannelOptions(target, secure, serverName), ...o.channelOptions };
    return new GatewayLink({ address: target.address, token: o.token, heartbeatMs: o.heartbeatMs, backoff: o.backoff, channelOptions, tls: o.tls, logger: this.logger }, this.linkHelper);
  }

  /** Static capabilities once, and a first sample, before the first registration. */
  private async prepareTelemetry(): Promise<void> {
    if (!this.telemetry || !this.sampler) return;
    try {
      this.capabilities = await this.telemetry.capabilities();
    } catch {
      // Register without capabilities rather than not at all.
    }
    this.sampler.start();
    await this.sampler.runOnce();
  }

  get isRegistered(): boolean {
    return this.state === 'running' && this.links.some((l) => l.isRegistered);
  }

  /** host:port clients may call this node on directly ('' without `direct`, or before start). */
  get directAddress(): string {
    return this.direct?.advertised ?? '';
  }

  /** Calls in progress or waiting on this node. */
  get activeCalls(): number {
    return this.runner.activeCalls;
  }

  /**
   * Stops taking new calls, finishes those in progress, then disconnects; resolves once
   * their results have reached the gateway (or the streams' close grace ran out).
   */
  drain(): Promise<void> {
    if (this.drained) return this.drained;
    if (this.state === 'stopped' || this.state === 'new') return Promise.resolve();
    this.state = 'draining';
    this.logger.info({ activeCalls: this.runner.activeCalls }, 'draining');
    this.runner.stopAccepting();
    this.direct?.goAway('the node is draining');
    for (const link of this.links) link.drain();
    this.drained = (async () => {
      while (this.runner.activeCalls > 0) await once(this, 'idle');
      this.shutdown('drained');
      await this.linksClosed();
    })();
    return this.drained;
  }

  /** Stops at once: running calls are aborted, the stream is closed. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.shutdown('stopped');
    await this.linksClosed();
  }

  private async linksClosed(): Promise<void> {
    await Promise.all(this.links.map((l) => l.closed()));
  }

  private shutdown(reason: string): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.releaseHeadroom();
    this.sampler?.stop();
    // Direct calls are answered (CANCELLED) before the runner aborts them silently.
    void this.direct?.close();
    this.runner.close(reason);
    for (const link of this.links) link.close();
    this.firstRegistration?.cancel(reason);
    this.firstRegistration = undefined;
    this.logger.info({ reason }, 'stopped');
    this.emit('stopped', { reason });
  }

  /** start() rejected: the node does not go on retrying behind the caller's back. */
  private gaveUp(err: EasyRemoteError): void {
    this.logger.error({ code: err.code, reason: err.message }, 'start failed');
    this.shutdown(err.code === 'GATEWAY_UNAVAILABLE' ? 'connect timeout' : 'refused');
  }

  private functionsChanged(): void {
    if (this.state === 'running') for (const link of this.links) link.reregister();
  }

  // ---- what the links ask of the node ----------------------------------------------------

  private makeLinkHelper(): GatewayLinkHelper {
    return {
      registration: (link) => this.registration(link),
      heartbeat: (link) => this.heartbeat(link),
      calls: this.runner,
      registered: (link, gatewayId) => {
        this.linksChanged(link);
        this.emit('registered', { gatewayId });
        this.firstRegistration?.registered();
        this.firstRegistration = undefined;
      },
      refused: (_link, err, retrying) => {
        this.emit('refused', err);
        // A refusal for good closes its link only: the node goes on while another gateway may take it.
        const lastLink = retrying || this.links.every((l) => l.isClosed);
        const startFailed = lastLink ? this.firstRegistration?.refused(err, retrying) : undefined;
        if (startFailed !== undefined) {
          this.firstRegistration = undefined;
          this.gaveUp(startFailed);
        } else if (!retrying && lastLink) this.shutdown('refused');
      },
      disconnected: (link, reason) => {
        this.linksChanged(link);
        this.firstRegistration?.failed(reason);
        this.emit('disconnected', { reason });
        // A draining node whose last stream is gone has nobody left to reply to.
        if (this.state === 'draining' && this.links.every((l) => !l.isConnected)) this.shutdown('drained');
      },
      drainRequested: () => {
        this.logger.info('the gateway asked this node to drain');
        void this.drain();
      },
      error: (err) => {
        this.logger.warn({ reason: err.message }, 'error on the gateway stream');
        // The link recovers by itself (it reconnects); an 'error' nobody listens for would
        // throw out of the EventEmitter and end the process over a passing fault.
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
    };
  }

  /** The other gateways hear at once that one of the node's links came or went (operators see it there). */
  private linksChanged(changed: GatewayLink): void {
    for (const l of this.links) if (l !== changed) l.beatNow();
  }

  /** Every link as the node reports it to gateways, `link` marked as the one the report travels on. */
  private gatewayStates(link: GatewayLink): GatewayLinkState[] {
    return this.links.map((l) => ({ address: l.address, gatewayId: l.gatewayId, registered: l.isRegistered, thisLink: l === link }));
  }

  private registration(link: GatewayLink): Omit<Register, 'token'> {
    return {
      nodeId: this.nodeId,
      functions: this.runner.functions.map(toSpec),
      capabilities: {
        cpuCores: this.capabilities.cpuCores,
        memoryTotalBytes: this.capabilities.memoryTotalBytes,
        gpus: this.capabilities.gpus,
        labels: this.options.labels ?? {},
        costPerHour: this.options.costPerHour ?? 0,
      },
      protocolVersion: PROTOCOL_VERSION,
      instanceId: this.instanceId,
      gateways: this.gatewayStates(link),
      directAddress: this.direct?.advertised ?? '',
    };
  }

  private heartbeat(link: GatewayLink): Heartbeat {
    const t = this.sampler?.latest();
    return {
      cpuPercent: t?.cpuPercent ?? 0,
      memoryUsedBytes: t?.memoryUsedBytes ?? 0,
      memoryTotalBytes: t?.memoryTotalBytes ?? 0,
      gpus: t?.gpus ?? [],
      functions: this.runner.load(),
      hasTelemetry: t !== undefined,
      gateways: this.gatewayStates(link),
    };
  }
}

/** `gateway` then `gateways`, each address once; at least one. */
function gatewayList(options: ComputeNodeOptions): string[] {
  const given = [...(options.gateway === undefined ? [] : [options.gateway]), ...(options.gateways ?? [])];
  for (const a of given) if (typeof a !== 'string' || a === '') throw new TypeError(`gateway addresses are host:port strings, got ${JSON.stringify(a)}`);
  const list = [...new Set(given)];
  if (list.length === 0) throw new TypeError('a node needs a gateway: set gateway (host:port) or gateways (a list of them)');
  return list;
}
