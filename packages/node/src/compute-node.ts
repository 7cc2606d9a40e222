// A compute node: the public face. It holds the node's functions (run by one CallRunner,
// with one set of limits) and one GatewayLink per gateway; each link dials out, registers
// the node and hands the calls it receives to the runner.
import { EventEmitter, once } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { EasyRemoteError, pemIdentity, PROTOCOL_VERSION, readPem, type Heartbeat, type NodeTls, type Register } from '@easyremote/protocol';
import type { BackoffOptions } from './backoff.js';
import { CallRunner } from './call-runner.js';
import { GatewayLink, type GatewayLinkHelper } from './gateway-link.js';
import { validateOptions, type RemoteOptions } from './options.js';
import { isGeneratorFunction, toSpec, type Handler } from './registered-function.js';
import { remoteMethodsOf } from './remote.js';
import { WorkerPool } from './worker/worker-pool.js';
import { SystemTelemetryProvider, TelemetrySampler, type StaticCapabilities, type TelemetryProvider } from './telemetry/index.js';

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;

export interface ComputeNodeOptions {
  /** Gateway address, host:port. */
  gateway: string;
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
  backoff?: BackoffOptions;
  /**
   * Connect with TLS and verify the gateway: `{ ca, serverName }` as the client's option, or
   * `true` for the system roots; with `cert` and `key` (file paths, or PEM text or bytes)
   * the node presents its certificate, which gateways that require node certificates
   * take the node's id from (its first DNS subjectAltName, else URI, else CN).
   */
  tls?: NodeTls;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
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
}

export class ComputeNode extends EventEmitter<NodeEvents> {
  readonly nodeId: string;
  private readonly instanceId = randomUUID();
  private readonly runner: CallRunner;
  private readonly links: GatewayLink[];
  private state: State = 'new';
  private firstRegistration?: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> };
  private drained?: Promise<void>;
  private readonly sampler: TelemetrySampler | undefined;
  private readonly telemetry: TelemetryProvider | undefined;
  private capabilities: StaticCapabilities = { cpuCores: 0, memoryTotalBytes: 0, gpus: [] };

  constructor(private readonly options: ComputeNodeOptions) {
    super();
    this.nodeId = options.nodeId ?? certificateNodeId(options.tls) ?? `${hostname()}-${process.pid}`;
    this.runner = new CallRunner({ nodeId: this.nodeId, maxConcurrent: options.maxConcurrent, onIdle: () => this.emit('idle') });
    this.telemetry = options.telemetry === false ? undefined : (options.telemetry ?? new SystemTelemetryProvider());
    this.sampler = this.telemetry ? new TelemetrySampler(this.telemetry, { intervalMs: options.telemetryIntervalMs }) : undefined;
    const helper = this.linkHelper();
    this.links = [options.gateway].map(
      (address) =>
        new GatewayLink(
          { address, token: options.token, heartbeatMs: options.heartbeatMs, backoff: options.backoff, channelOptions: options.channelOptions, tls: options.tls },
          helper,
        ),
    );
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

  /** Connects and resolves once a gateway accepted the registration. Reconnects by itself afterwards. */
  start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`node ${this.nodeId} already started`);
    if (this.runner.functions.length === 0) throw new Error(`node ${this.nodeId} has no functions to serve`);
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    this.firstRegistration = { resolve, reject, promise };
    this.state = 'running';
    void this.prepareTelemetry().then(() => {
      if (this.state === 'running') for (const link of this.links) link.start();
    });
    return promise;
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
    this.runner.stopAccepting();
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
    this.sampler?.stop();
    this.runner.close(reason);
    for (const link of this.links) link.close();
    this.firstRegistration?.reject(new Error(`node ${this.nodeId} ${reason} before it registered`));
    this.firstRegistration = undefined;
  }

  private functionsChanged(): void {
    if (this.state === 'running') for (const link of this.links) link.reregister();
  }

  // ---- what the links ask of the node ----------------------------------------------------

  private linkHelper(): GatewayLinkHelper {
    return {
      registration: () => this.registration(),
      heartbeat: () => this.heartbeat(),
      calls: this.runner,
      registered: (_link, gatewayId) => {
        this.emit('registered', { gatewayId });
        this.firstRegistration?.resolve();
        this.firstRegistration = undefined;
      },
      refused: (_link, err, retrying) => {
        this.emit('refused', err);
        if (retrying) return;
        this.firstRegistration?.reject(err);
        this.firstRegistration = undefined;
        this.shutdown('refused');
      },
      disconnected: (_link, reason) => {
        this.emit('disconnected', { reason });
        // A draining node whose last stream is gone has nobody left to reply to.
        if (this.state === 'draining' && this.links.every((l) => !l.isConnected)) this.shutdown('drained');
      },
      drainRequested: () => void this.drain(),
      error: (err) => this.emit('error', err),
    };
  }

  private registration(): Omit<Register, 'token'> {
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
    };
  }

  private heartbeat(): Heartbeat {
    const t = this.sampler?.latest();
    return {
      cpuPercent: t?.cpuPercent ?? 0,
      memoryUsedBytes: t?.memoryUsedBytes ?? 0,
      memoryTotalBytes: t?.memoryTotalBytes ?? 0,
      gpus: t?.gpus ?? [],
      functions: this.runner.load(),
      hasTelemetry: t !== undefined,
    };
  }
}
