// A compute node: dials the gateway, keeps one bidirectional stream, registers its
// functions and runs the calls the gateway sends, replying over the same stream.
import { EventEmitter, once } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  Cancelled,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DeadlineExceeded,
  EasyRemoteError,
  ENVELOPE_SLACK_BYTES,
  FunctionNotFound,
  InvalidArgument,
  KEEPALIVE_OPTIONS,
  NodeLinkService,
  NodeLost,
  Overloaded,
  PayloadTooLarge,
  PROTOCOL_VERSION,
  RemoteError,
  decodeArgs,
  encode,
  errorFromDetail,
  type GatewayFrame,
  type Invoke,
  type NodeFrame,
} from '@easyremote/protocol';
import { Backoff, type BackoffOptions } from './backoff.js';
import { runWithContext, type CallContext } from './context.js';
import { validateOptions, type RemoteOptions } from './options.js';
import { isGeneratorFunction, toSpec, type Handler, type RegisteredFunction } from './registered-function.js';
import { remoteMethodsOf } from './remote.js';
import { Scheduler, type Job } from './scheduler.js';
import { WorkerPool } from './worker/worker-pool.js';
import { SystemTelemetryProvider, TelemetrySampler, type StaticCapabilities, type TelemetryProvider } from './telemetry/index.js';

const NodeLinkClient = grpc.makeGenericClientConstructor(NodeLinkService, 'NodeLink');

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;

export interface ComputeNodeOptions {
  /** Gateway address, host:port. */
  gateway: string;
  /** Stable identity of this node; defaults to hostname-pid. */
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
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

type State = 'new' | 'connecting' | 'registered' | 'draining' | 'stopped';

interface RunningCall {
  readonly invoke: Invoke;
  readonly fn: RegisteredFunction;
  readonly controller: AbortController;
  /** The stream this call arrived on: replies go there or nowhere. */
  readonly stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame>;
  job?: Job;
  timer?: NodeJS.Timeout;
  credit: number;
  creditWaiter?: () => void;
}

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
  private readonly functions = new Map<string, RegisteredFunction>();
  private readonly calls = new Map<number, RunningCall>();
  private readonly scheduler: Scheduler;
  private readonly backoff: Backoff;
  private readonly client: grpc.Client;
  private stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame> | undefined;
  private state: State = 'new';
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  private firstRegistration?: { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> };
  private drained?: Promise<void>;
  private readonly sampler: TelemetrySampler | undefined;
  private readonly telemetry: TelemetryProvider | undefined;
  private capabilities: StaticCapabilities = { cpuCores: 0, memoryTotalBytes: 0, gpus: [] };

  constructor(private readonly options: ComputeNodeOptions) {
    super();
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}`;
    this.scheduler = new Scheduler(options.maxConcurrent ?? Infinity);
    this.backoff = new Backoff(options.backoff);
    this.telemetry = options.telemetry === false ? undefined : (options.telemetry ?? new SystemTelemetryProvider());
    this.sampler = this.telemetry ? new TelemetrySampler(this.telemetry, { intervalMs: options.telemetryIntervalMs }) : undefined;
    this.client = new NodeLinkClient(options.gateway, grpc.credentials.createInsecure(), {
      ...KEEPALIVE_OPTIONS,
      'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      'grpc.max_send_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      // The node's stream gets a connection of its own, never shared with a client in the same
      // process: a client's burst of cancellations must not take the node's stream down with it.
      'grpc.use_local_subchannel_pool': 1,
      // Reconnects are ours (with backoff); do not let the channel hold calls while down.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...options.channelOptions,
    });
  }

  /** Registers one function without decorators. */
  register(name: string, handler: Handler, options: RemoteOptions = {}, thisArg?: unknown): this {
    const fnName = options.name ?? name;
    if (!NAME_PATTERN.test(fnName)) {
      throw new TypeError(`invalid function name ${JSON.stringify(fnName)}: letters, digits, _ . - (max 128), starting with a letter or _`);
    }
    if (typeof handler !== 'function') throw new TypeError(`${fnName}: handler must be a function`);
    validateOptions(fnName, options);
    if (this.functions.has(fnName)) throw new TypeError(`function ${fnName} is already registered on this node`);
    const kind = options.stream || isGeneratorFunction(handler) ? 'stream' : 'unary';
    const owner = this.scheduler.owner(fnName, options.maxConcurrent, options.queueSize, options.priority ?? 0);
    this.functions.set(fnName, { name: fnName, handler, thisArg, options, kind, owner });
    if (this.state === 'registered') this.sendRegister();
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
    if (this.functions.has(fnName)) throw new TypeError(`function ${fnName} is already registered on this node`);
    const url = module instanceof URL ? module.href : module.startsWith('file:') ? module : new URL(module, `file://${process.cwd()}/`).href;
    const pool = new WorkerPool(fnName, url, exportName, opts.maxConcurrent);
    const owner = this.scheduler.owner(fnName, opts.maxConcurrent, opts.queueSize, opts.priority ?? 0);
    const handler: Handler = () => {
      throw new Error(`${fnName} runs in a worker thread`);
    };
    this.functions.set(fnName, { name: fnName, handler, thisArg: undefined, options: opts, kind: 'unary', owner, pool });
    if (this.state === 'registered') this.sendRegister();
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

  /** Connects and resolves once the gateway accepted the registration. Reconnects by itself afterwards. */
  start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`node ${this.nodeId} already started`);
    if (this.functions.size === 0) throw new Error(`node ${this.nodeId} has no functions to serve`);
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    this.firstRegistration = { resolve, reject, promise };
    this.state = 'connecting';
    void this.prepareTelemetry().then(() => {
      if (this.state === 'connecting') this.connect();
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
    return this.state === 'registered';
  }

  /** Calls in progress or waiting on this node. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Stops taking new calls, finishes those in progress, then disconnects. */
  drain(): Promise<void> {
    if (this.drained) return this.drained;
    if (this.state === 'stopped' || this.state === 'new') return Promise.resolve();
    this.state = 'draining';
    this.send({ drain: {} });
    this.drained = (async () => {
      while (this.calls.size > 0) await once(this, 'idle');
      this.shutdown('drained');
    })();
    return this.drained;
  }

  /** Stops at once: running calls are aborted, the stream is closed. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.shutdown('stopped');
  }

  // ---- connection ---------------------------------------------------------------

  private connect(): void {
    this.state = 'connecting';
    const metadata = new grpc.Metadata();
    if (this.options.token) metadata.set('authorization', `Bearer ${this.options.token}`);
    const stream = (this.client as any).connect(metadata) as grpc.ClientDuplexStream<NodeFrame, GatewayFrame>;
    this.stream = stream;
    stream.on('data', (frame: GatewayFrame) => {
      try {
        this.onFrame(stream, frame);
      } catch (err) {
        this.emit('error', err as Error);
      }
    });
    stream.on('error', (err: Error) => this.onDisconnected(stream, `stream error: ${err.message}`));
    stream.on('end', () => this.onDisconnected(stream, 'gateway closed the stream'));
    stream.on('close', () => this.onDisconnected(stream, 'stream closed'));
    this.sendRegister();
  }

  private sendRegister(): void {
    this.send({
      register: {
        nodeId: this.nodeId,
        token: this.options.token ?? '',
        functions: [...this.functions.values()].map(toSpec),
        capabilities: {
          cpuCores: this.capabilities.cpuCores,
          memoryTotalBytes: this.capabilities.memoryTotalBytes,
          gpus: this.capabilities.gpus,
          labels: this.options.labels ?? {},
          costPerHour: this.options.costPerHour ?? 0,
        },
        protocolVersion: PROTOCOL_VERSION,
        instanceId: this.instanceId,
      },
    });
  }

  private onDisconnected(stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame>, reason: string): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    clearInterval(this.heartbeatTimer);
    stream.cancel();
    for (const call of this.calls.values()) this.abortCall(call, new NodeLost(`node ${this.nodeId} lost its gateway connection`));
    this.emit('disconnected', { reason });
    if (this.state === 'stopped') return;
    if (this.state === 'draining') {
      this.shutdown('drained');
      return;
    }
    this.state = 'connecting';
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      if (this.state === 'connecting') this.connect();
    }, delay);
  }

  private shutdown(reason: string): void {
    this.state = 'stopped';
    this.sampler?.stop();
    for (const f of this.functions.values()) void f.pool?.close();
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    for (const call of this.calls.values()) this.abortCall(call, new Cancelled(`node ${this.nodeId} ${reason}`));
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      stream.end();
      // Give the end-of-stream a moment to reach the gateway before the channel closes.
      setTimeout(() => this.client.close(), 50).unref();
    } else {
      this.client.close();
    }
    this.firstRegistration?.reject(new Error(`node ${this.nodeId} ${reason} before it registered`));
    this.firstRegistration = undefined;
  }

  private send(frame: NodeFrame): boolean {
    const stream = this.stream;
    if (stream === undefined) return true;
    return stream.write(frame);
  }

  // ---- frames from the gateway --------------------------------------------------

  private onFrame(stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame>, frame: GatewayFrame): void {
    if (stream !== this.stream) return;
    if (frame.invoke) this.onInvoke(stream, frame.invoke);
    else if (frame.cancel) {
      const call = this.calls.get(frame.cancel.attemptId);
      // The gateway's deadline races this node's own timer for it: the handler sees the same reason either way.
      if (call) this.abortCall(call, frame.cancel.reason === 'deadline' ? this.deadlinePassed(call) : new Cancelled(`cancelled by the gateway: ${frame.cancel.reason}`));
    } else if (frame.credit) {
      const call = this.calls.get(frame.credit.attemptId);
      if (call) {
        call.credit += frame.credit.chunks;
        call.creditWaiter?.();
      }
    } else if (frame.ping) this.send({ pong: { nonce: frame.ping.nonce } });
    else if (frame.registered) this.onRegistered(frame.registered);
    else if (frame.drain) void this.drain();
  }

  private onRegistered(reg: NonNullable<GatewayFrame['registered']>): void {
    if (!reg.accepted) {
      const err = reg.refusal ? errorFromDetail(reg.refusal) : new EasyRemoteError('REGISTRATION_REFUSED', 'registration refused');
      this.emit('refused', err);
      // A duplicate id may be a stale session of ours that the gateway has not expired yet:
      // retry. Anything else (bad token, bad name) will not fix itself.
      if (err.code !== 'REGISTRATION_REFUSED') {
        this.firstRegistration?.reject(err);
        this.firstRegistration = undefined;
        this.shutdown('refused');
      } else {
        this.stream?.cancel();
      }
      return;
    }
    this.maxPayloadBytes = reg.maxPayloadBytes || DEFAULT_MAX_PAYLOAD_BYTES;
    if (this.state === 'connecting') this.state = 'registered';
    this.backoff.reset();
    clearInterval(this.heartbeatTimer);
    const every = this.options.heartbeatMs ?? (reg.heartbeatMs || DEFAULT_HEARTBEAT_MS);
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), every);
    this.heartbeatTimer.unref();
    this.emit('registered', { gatewayId: reg.gatewayId });
    this.firstRegistration?.resolve();
    this.firstRegistration = undefined;
  }

  private sendHeartbeat(): void {
    const functions = [...this.functions.values()].map((f) => ({ name: f.name, inFlight: f.owner.running, queued: f.owner.queue.length }));
    const t = this.sampler?.latest();
    this.send({
      heartbeat: {
        cpuPercent: t?.cpuPercent ?? 0,
        memoryUsedBytes: t?.memoryUsedBytes ?? 0,
        memoryTotalBytes: t?.memoryTotalBytes ?? 0,
        gpus: t?.gpus ?? [],
        functions,
        hasTelemetry: t !== undefined,
      },
    });
  }

  // ---- calls ----------------------------------------------------------------------

  private fail(stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame>, attemptId: number, err: EasyRemoteError, execMs = 0): void {
    if (stream !== this.stream) return;
    this.send({ error: { attemptId, error: { ...err.toDetail(), nodeId: this.nodeId }, execMs } });
  }

  private onInvoke(stream: grpc.ClientDuplexStream<NodeFrame, GatewayFrame>, invoke: Invoke): void {
    const fn = this.functions.get(invoke.function);
    if (fn === undefined) {
      this.fail(stream, invoke.attemptId, new FunctionNotFound(`function ${invoke.function} is not served by node ${this.nodeId}`));
      return;
    }
    if (this.state === 'draining' || this.state === 'stopped') {
      this.fail(stream, invoke.attemptId, new Overloaded(`node ${this.nodeId} is draining`, { retryAfterMs: 0 }));
      return;
    }
    if (this.calls.has(invoke.attemptId)) return; // a duplicate invoke: the first one answers
    const call: RunningCall = { invoke, fn, controller: new AbortController(), stream, credit: invoke.initialCredit };
    const { admission, job } = this.scheduler.admit(fn.owner, () => void this.execute(call));
    if (admission === 'refused') {
      const limit = `maxConcurrent=${fn.owner.maxConcurrent}, queueSize=${fn.owner.queueSize}`;
      this.fail(stream, invoke.attemptId, new Overloaded(`${fn.name} on node ${this.nodeId} is full (${limit})`, { retryAfterMs: 100 }));
      return;
    }
    if (admission === 'queued') {
      call.job = job;
      this.calls.set(invoke.attemptId, call);
    }
    if (invoke.deadlineUnixMs > 0 && this.calls.has(invoke.attemptId)) this.armDeadline(call);
  }

  private armDeadline(call: RunningCall): void {
    if (call.timer !== undefined || call.invoke.deadlineUnixMs <= 0) return;
    const left = Math.max(0, call.invoke.deadlineUnixMs - Date.now());
    call.timer = setTimeout(() => this.abortCall(call, this.deadlinePassed(call)), left);
  }

  private deadlinePassed(call: RunningCall): DeadlineExceeded {
    return new DeadlineExceeded(`${call.fn.name} passed its deadline on node ${this.nodeId}`);
  }

  private abortCall(call: RunningCall, reason: EasyRemoteError): void {
    if (call.job && this.scheduler.withdraw(call.job)) {
      // Never started: nothing will reply, so finish it here.
      this.finishCall(call, false);
    }
    if (!call.controller.signal.aborted) call.controller.abort(reason);
    call.creditWaiter?.();
  }

  private finishCall(call: RunningCall, started: boolean): void {
    clearTimeout(call.timer);
    this.calls.delete(call.invoke.attemptId);
    if (started) this.scheduler.release(call.fn.owner);
    if (this.calls.size === 0) this.emit('idle');
  }

  private context(call: RunningCall): CallContext {
    const { invoke, fn, controller } = call;
    const wantProgress = invoke.wantProgress;
    return {
      callId: invoke.callId,
      attempt: invoke.attempt,
      functionName: fn.name,
      nodeId: this.nodeId,
      deadline: invoke.deadlineUnixMs > 0 ? invoke.deadlineUnixMs : undefined,
      signal: controller.signal,
      metadata: invoke.metadata,
      progress: (fraction: number, message = '') => {
        if (!wantProgress || controller.signal.aborted || call.stream !== this.stream) return;
        const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
        this.send({ progress: { attemptId: invoke.attemptId, fraction: f, message: String(message) } });
      },
    };
  }

  private async execute(call: RunningCall): Promise<void> {
    call.job = undefined;
    this.calls.set(call.invoke.attemptId, call);
    this.armDeadline(call);
    const { invoke, fn, stream } = call;
    const t0 = performance.now();
    try {
      if (fn.pool) {
        const payload = Buffer.from(await fn.pool.run(invoke.args, call.controller.signal));
        if (call.controller.signal.aborted || stream !== this.stream) return;
        if (payload.length > this.maxPayloadBytes) throw new PayloadTooLarge(`${fn.name} produced ${payload.length} bytes; the gateway's limit is ${this.maxPayloadBytes} bytes`);
        this.send({ result: { attemptId: invoke.attemptId, payload, execMs: performance.now() - t0 } });
        return;
      }
      let args: unknown[];
      try {
        args = invoke.args.length === 0 ? [] : decodeArgs(invoke.args);
      } catch (err) {
        throw new InvalidArgument(`${fn.name}: ${(err as Error).message}`);
      }
      const ctx = this.context(call);
      if (fn.kind === 'stream') {
        await this.runStream(call, ctx, args);
        if (!call.controller.signal.aborted) this.send({ end: { attemptId: invoke.attemptId, execMs: performance.now() - t0 } });
      } else {
        const value = await runWithContext(ctx, () => fn.handler.apply(fn.thisArg, args));
        if (call.controller.signal.aborted || stream !== this.stream) return;
        const payload = this.encodeResult(fn, value);
        this.send({ result: { attemptId: invoke.attemptId, payload, execMs: performance.now() - t0 } });
      }
    } catch (err) {
      if (call.controller.signal.aborted) return; // the gateway already answered the caller
      this.fail(stream, invoke.attemptId, asWireError(err), performance.now() - t0);
    } finally {
      this.finishCall(call, true);
    }
  }

  private encodeResult(fn: RegisteredFunction, value: unknown): Buffer {
    let payload: Buffer;
    try {
      payload = encode(value);
    } catch (err) {
      throw Object.assign(new TypeError(`${fn.name} returned a value that cannot be encoded: ${(err as Error).message}`), { name: 'SerializationError' });
    }
    if (payload.length > this.maxPayloadBytes) {
      throw new PayloadTooLarge(`${fn.name} produced ${payload.length} bytes; the gateway's limit is ${this.maxPayloadBytes} bytes`);
    }
    return payload;
  }

  private async runStream(call: RunningCall, ctx: CallContext, args: unknown[]): Promise<void> {
    const { fn, invoke, controller } = call;
    const produced = runWithContext(ctx, () => fn.handler.apply(fn.thisArg, args)) as AsyncIterable<unknown> | Iterable<unknown>;
    const iterator: AsyncIterator<unknown> | Iterator<unknown> =
      typeof (produced as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function'
        ? (produced as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : typeof (produced as Iterable<unknown>)?.[Symbol.iterator] === 'function'
          ? (produced as Iterable<unknown>)[Symbol.iterator]()
          : (() => {
              throw new TypeError(`${fn.name} is a stream function but returned ${typeof produced}`);
            })();
    try {
      for (;;) {
        while (call.credit <= 0 && !controller.signal.aborted) {
          await new Promise<void>((resolve) => (call.creditWaiter = resolve));
          call.creditWaiter = undefined;
        }
        if (controller.signal.aborted) return;
        const step = await runWithContext(ctx, () => iterator.next());
        if (step.done || controller.signal.aborted) return;
        const payload = this.encodeResult(fn, step.value);
        call.credit--;
        if (!this.send({ chunk: { attemptId: invoke.attemptId, payload } }) && this.stream) {
          await Promise.race([once(this.stream, 'drain'), once(controller.signal, 'abort')]);
        }
      }
    } finally {
      // Runs the generator's finally blocks when the caller went away or an error ended it.
      if (controller.signal.aborted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }
}

/** What a handler threw, as it travels: catalogue errors keep their code. */
function asWireError(err: unknown): EasyRemoteError {
  if (err instanceof EasyRemoteError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new RemoteError(e.message, { remoteName: e.name, remoteStack: e.stack ?? '' });
}
