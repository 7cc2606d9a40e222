// The gateway's core (registry, health, router, admission queue, dispatcher) wired the
// way gateway.ts wires it, on a fake clock and a seeded random source, with no network:
// node sessions record the frames sent to them, calls reply into recording sinks, and
// the call recorder keeps what it was told.
import {
  CallOptions,
  ErrorDetail,
  FunctionSpec,
  type EasyRemoteError,
  type ErrorCode,
  type GatewayFrame,
  type Invoke,
} from '@easyremote/protocol';
import type { CallSink } from '../../src/calls/call-sink.js';
import { AdmissionQueue } from '../../src/calls/admission-queue.js';
import { Dispatcher, type CallRecorder } from '../../src/calls/dispatcher.js';
import { PendingCall } from '../../src/calls/pending-call.js';
import { NodeHealthMonitor } from '../../src/health/health-monitor.js';
import { OutlierDetector, type OutlierDetectorOptions } from '../../src/health/outlier-detector.js';
import { OutlierFeedback } from '../../src/health/outlier-feedback.js';
import type { ConfigDefaults, FunctionConfigOverride } from '../../src/registry/function-entry.js';
import { NodeSession } from '../../src/registry/node-session.js';
import { Registry } from '../../src/registry/registry.js';
import { Router } from '../../src/routing/router.js';
import type { NodeCapabilities, TelemetrySnapshot } from '../../src/strategies/strategy.js';
import { mulberry32 } from '../strategies/fixtures.js';
import { FakeClock } from './fake-clock.js';

export interface CoreOptions {
  /** Per-function overrides, as a gateway configuration file gives them. */
  functions?: Record<string, FunctionConfigOverride>;
  /** Strategy for functions that name none; pick_first keeps tests predictable. */
  defaultStrategy?: string;
  retryCount?: number;
  queueSize?: number;
  queueBytes?: number;
  providerGapMs?: number;
  leaseMs?: number;
  availableThreshold?: number;
  outlierDetection?: Omit<OutlierDetectorOptions, 'now' | 'providersOf'>;
  initialCredit?: number;
  location?: string;
  seed?: number;
}

/** A function declaration; loadBalancing may be given as an object (it travels as JSON). */
export type SpecInput = Partial<Omit<FunctionSpec, 'name'>> & { name: string; loadBalancing?: string | Record<string, unknown> };

export function spec(input: SpecInput): FunctionSpec {
  const { loadBalancing, ...rest } = input;
  const lb = loadBalancing === undefined ? undefined : typeof loadBalancing === 'string' ? { strategy: loadBalancing } : loadBalancing;
  return FunctionSpec.fromPartial({ kind: 'unary', ...rest, ...(lb === undefined ? {} : { loadBalancingJson: JSON.stringify(lb) }) });
}

export interface NodeInput {
  capabilities?: Partial<NodeCapabilities>;
  /** cpuPercent shorthand for a telemetry snapshot; undefined = none yet. */
  cpuPercent?: number;
  telemetry?: TelemetrySnapshot;
}

/** One fake node: its session, every frame the gateway sent it, and ways to answer. */
export class TestNode {
  readonly frames: GatewayFrame[] = [];
  closed = false;
  readonly session: NodeSession;

  constructor(
    private readonly core: Core,
    nodeId: string,
    input: NodeInput,
  ) {
    const caps: NodeCapabilities = { cpuCores: 8, memoryTotalBytes: 32e9, gpus: [], labels: {}, costPerHour: 0, ...input.capabilities };
    this.session = new NodeSession(
      nodeId,
      `${nodeId}-instance`,
      { send: (frame) => this.frames.push(frame), writable: () => true, whenWritable: (listener) => listener(), close: () => (this.closed = true) },
      caps,
      core.clock,
      `test:${nodeId}`,
    );
    if (input.telemetry !== undefined) this.session.telemetry = input.telemetry;
    else if (input.cpuPercent !== undefined) this.setCpu(input.cpuPercent);
  }

  get nodeId(): string {
    return this.session.nodeId;
  }

  invokes(): Invoke[] {
    return this.frames.flatMap((f) => (f.invoke ? [f.invoke] : []));
  }

  /** The most recent invoke sent to this node (throws when there is none). */
  lastInvoke(): Invoke {
    const all = this.invokes();
    const last = all.at(-1);
    if (last === undefined) throw new Error(`node ${this.nodeId} was sent no invoke`);
    return last;
  }

  cancels(): Array<{ attemptId: number; reason: string }> {
    return this.frames.flatMap((f) => (f.cancel ? [f.cancel] : []));
  }

  credits(): Array<{ attemptId: number; chunks: number }> {
    return this.frames.flatMap((f) => (f.credit ? [f.credit] : []));
  }

  setCpu(cpuPercent: number): void {
    this.session.telemetry = { cpuPercent, memoryUsedBytes: 1e9, memoryTotalBytes: 32e9, gpus: [], receivedAt: this.core.clock.now() };
  }

  /** Any frame from the node renews its lease, as NodeLinkService does. */
  heartbeat(): void {
    this.session.lastSeen = this.core.clock.now();
  }

  result(attemptId: number, payload: Buffer | string, execMs = 1): void {
    this.heartbeat();
    this.core.dispatcher.onResult(this.session, { attemptId, payload: Buffer.from(payload), execMs });
  }

  fail(attemptId: number, code: ErrorCode, message = `${code} from ${this.nodeId}`, execMs = 1): void {
    this.heartbeat();
    this.core.dispatcher.onError(this.session, {
      attemptId,
      execMs,
      error: ErrorDetail.fromPartial({ code, message }),
    });
  }

  chunk(attemptId: number, payload: Buffer | string = 'c'): void {
    this.heartbeat();
    this.core.dispatcher.onChunk(this.session, { attemptId, payload: Buffer.from(payload) });
  }

  resultPart(attemptId: number, data: Buffer | string = 'p'): void {
    this.heartbeat();
    this.core.dispatcher.onResultPart(this.session, { attemptId, data: Buffer.from(data) });
  }

  end(attemptId: number, execMs = 1): void {
    this.heartbeat();
    this.core.dispatcher.onEnd(this.session, { attemptId, execMs });
  }

  progress(attemptId: number, fraction: number, message = ''): void {
    this.heartbeat();
    this.core.dispatcher.onProgress(this.session, { attemptId, fraction, message });
  }

  /** The stream broke: what NodeLinkService.endSession does. */
  lose(reason = 'stream error'): void {
    const { registry, dispatcher, detector } = this.core;
    if (this.session.state === 'closed') return;
    this.session.state = 'closed';
    this.session.endReason = reason;
    dispatcher.onSessionLost(this.session, reason);
    registry.remove(this.session);
    detector.forgetNode(this.nodeId);
  }
}

export type SinkEvent =
  | { type: 'result'; payload: string; nodeId: string }
  | { type: 'chunk'; payload: string }
  | { type: 'part'; payload: string }
  | { type: 'progress'; fraction: number; message: string }
  | { type: 'end' }
  | { type: 'error'; error: EasyRemoteError };

/** A CallSink that keeps every event; chunk() answers `accepting`. */
export class RecordingSink implements CallSink {
  readonly events: SinkEvent[] = [];
  accepting = true;
  private drainListeners: Array<() => void> = [];

  result(payload: Buffer, nodeId: string): void {
    this.events.push({ type: 'result', payload: payload.toString(), nodeId });
  }
  chunk(payload: Buffer): boolean {
    this.events.push({ type: 'chunk', payload: payload.toString() });
    return this.accepting;
  }
  resultPart(data: Buffer): boolean {
    this.events.push({ type: 'part', payload: data.toString() });
    return this.accepting;
  }
  progress(fraction: number, message: string): void {
    this.events.push({ type: 'progress', fraction, message });
  }
  end(): void {
    this.events.push({ type: 'end' });
  }
  error(error: EasyRemoteError): void {
    this.events.push({ type: 'error', error });
  }
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /** The consumer caught up: accepts again and fires the drain listeners once. */
  drain(): void {
    this.accepting = true;
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const l of listeners) l();
  }

  get drainListenerCount(): number {
    return this.drainListeners.length;
  }

  /** Final events (result, end, error): a call gets exactly one. */
  finals(): SinkEvent[] {
    return this.events.filter((e) => e.type === 'result' || e.type === 'end' || e.type === 'error');
  }

  /** The error code of the final error ('' when the call has not failed). */
  get errorCode(): string {
    const e = this.finals().find((f) => f.type === 'error');
    return e?.type === 'error' ? e.error.code : '';
  }
}

export interface RecordedCall {
  readonly callId: number;
  readonly functionName: string;
  readonly errorCode: string;
  readonly nodeId: string;
  readonly strategy: string;
  readonly attempts: number;
}

/** A CallRecorder that keeps what it was told, frozen at the moment it was told. */
export class RecordingRecorder implements CallRecorder {
  readonly calls: RecordedCall[] = [];
  callFinished(call: PendingCall, errorCode: string): void {
    this.calls.push({ callId: call.id, functionName: call.entry.name, errorCode, nodeId: call.nodeId, strategy: call.strategy, attempts: call.attempts });
  }
}

export interface CallInput {
  args?: Buffer | string;
  options?: Partial<CallOptions>;
  metadata?: Record<string, string>;
  /** Deadline this far from now (ms); none when left out. */
  timeoutMs?: number;
  streaming?: boolean;
  wantProgress?: boolean;
  /** Build the call but do not start it. */
  start?: boolean;
}

export interface TestCall {
  readonly call: PendingCall;
  readonly sink: RecordingSink;
}

export class Core {
  readonly clock = new FakeClock();
  readonly registry: Registry;
  readonly detector: OutlierDetector;
  readonly health: NodeHealthMonitor;
  readonly router: Router;
  readonly admission: AdmissionQueue;
  readonly recorder = new RecordingRecorder();
  readonly dispatcher: Dispatcher;
  /** Registry and detector events, in order, as 'kind:detail'. */
  readonly events: string[] = [];
  private nextCallId = 1;

  constructor(readonly options: CoreOptions = {}) {
    const clock = this.clock;
    const defaults: ConfigDefaults = { strategy: options.defaultStrategy ?? 'pick_first', retryCount: options.retryCount ?? 2 };
    this.registry = new Registry(options.functions, defaults, { clock, providerGapMs: options.providerGapMs ?? 10_000 });
    this.detector = new OutlierDetector({ ...options.outlierDetection, now: () => clock.now(), providersOf: (fn) => this.registry.functions.get(fn)?.providers.size ?? 0 });
    this.health = new NodeHealthMonitor(this.registry, this.detector, { leaseMs: options.leaseMs ?? 10_000, availableThreshold: options.availableThreshold, clock });
    this.router = new Router({ health: this.health, random: mulberry32(options.seed ?? 7), clock, location: options.location });
    this.admission = new AdmissionQueue(options.queueSize, options.queueBytes);
    this.dispatcher = new Dispatcher({
      router: this.router,
      admission: this.admission,
      attempts: new OutlierFeedback(this.detector),
      recorder: this.recorder,
      clock,
      providerGapMs: options.providerGapMs ?? 10_000,
      initialCredit: options.initialCredit,
    });
    // As gateway.ts wires them: capacity that frees up (a provider joins, a pair is readmitted) moves waiting calls.
    this.registry.on('provider-added', (entry) => this.dispatcher.pump(entry));
    this.detector.on('readmitted', (e) => {
      this.events.push(`readmitted:${e.nodeId}:${e.functionName}`);
      const entry = this.registry.functions.get(e.functionName);
      if (entry) this.dispatcher.pump(entry);
    });
    this.detector.on('ejected', (e) => this.events.push(`ejected:${e.nodeId}:${e.functionName}`));
    this.registry.on('config-conflict', (entry, conflict) => this.events.push(`config-conflict:${entry.name}:${conflict}`));
    this.registry.on('function-added', (entry) => this.events.push(`function-added:${entry.name}`));
    this.registry.on('function-removed', (name) => this.events.push(`function-removed:${name}`));
  }

  /** Registers a node the way NodeLinkService does: checked, then added with its functions. */
  addNode(nodeId: string, functions: readonly SpecInput[], input: NodeInput = {}): TestNode {
    const specs = functions.map(spec);
    this.registry.check(nodeId, specs);
    const node = new TestNode(this, nodeId, input);
    this.registry.sessions.set(nodeId, node.session);
    this.registry.setFunctions(node.session, specs);
    return node;
  }

  entry(name: string) {
    const e = this.registry.functions.get(name);
    if (e === undefined) throw new Error(`function ${name} is not registered`);
    return e;
  }

  /** Builds a PendingCall of a registered function with a recording sink, and starts it. */
  call(functionName: string, input: CallInput = {}): TestCall {
    const sink = new RecordingSink();
    const options = input.options === undefined ? undefined : CallOptions.fromPartial(input.options);
    const deadline = input.timeoutMs === undefined ? 0 : this.clock.epochMs() + input.timeoutMs;
    const call = new PendingCall(
      this.nextCallId++,
      this.entry(functionName),
      Buffer.from(input.args ?? 'args'),
      options,
      input.metadata ?? {},
      deadline,
      input.streaming ?? false,
      input.wantProgress ?? false,
      sink,
      this.clock.now(),
      'test-client',
    );
    if (input.start !== false) this.dispatcher.start(call);
    return { call, sink };
  }

  /** What the recorder was told about one call (throws unless exactly once). */
  recorded(call: PendingCall): RecordedCall {
    const rows = this.recorder.calls.filter((r) => r.callId === call.id);
    if (rows.length !== 1) throw new Error(`call ${call.id} was recorded ${rows.length} times`);
    return rows[0]!;
  }
}
