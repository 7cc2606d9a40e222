// The Gateway service clients call: Call (unary) and CallStream (server streaming).
// Intake checks the caller, the function and the request before any work, computes the
// deadline, and hands the call to the dispatcher (through the result cache when the
// function allows it).
import type * as grpc from '@grpc/grpc-js';
import {
  AFFINITY_METADATA_KEY,
  DEADLINE_GRACE_METADATA_KEY,
  EasyRemoteError,
  FunctionNotFound,
  InvalidArgument,
  PayloadTooLarge,
  quote,
  toEasyRemoteError,
  toServiceError,
  type CallReply,
  type CallRequest,
  type StreamReply,
} from '@easyremote/protocol';
import { makeCacheKey, type ResultCache } from '../cache/result-cache.js';
import type { CallSink } from '../calls/call-sink.js';
import { callDeadline } from '../calls/deadline.js';
import { checkCallOptions, checkFunctionName, checkMetadata } from '../calls/request-limits.js';
import type { Dispatcher } from '../calls/dispatcher.js';
import { PendingCall } from '../calls/pending-call.js';
import { PromiseSink } from '../calls/promise-sink.js';
import type { Clock } from '../clock.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { Registry } from '../registry/registry.js';
import { failStream, streamSink, unarySink } from './call-sinks.js';
import { callerMetadata, metadataString } from './metadata.js';

export interface CallServiceSettings {
  maxPayloadBytes: number;
  /** Time limit for functions that set none and callers that send no deadline (ms). */
  defaultTimeoutMs: number;
  /** After start, how long calls to not-yet-registered functions wait for them (ms). */
  startupGraceMs: number;
  /** Calls that may wait for a function at once. */
  maxAwaiting: number;
}

export interface CallServiceParts {
  registry: Registry;
  dispatcher: Dispatcher;
  cache: ResultCache;
  metrics: MetricsRecorder;
  clock: Clock;
  settings: CallServiceSettings;
}

type IncomingCall = grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>;

/** prepare()'s answer for a function no node has registered yet, during the startup grace. */
const AWAIT_FUNCTION = Symbol('await-function');

export class CallService {
  private nextCallId = 1;
  /** clock.now when the gateway started listening; calls to unknown functions wait for a while after it. */
  private startedAt = -Infinity;
  /** Calls waiting for a function to be registered, by name. */
  private readonly awaiting = new Map<string, Set<() => void>>();
  private awaitingCount = 0;

  constructor(private readonly parts: CallServiceParts) {
    parts.registry.on('function-added', (entry) => {
      for (const resume of [...(this.awaiting.get(entry.name) ?? [])]) resume();
    });
  }

  /** The gateway listens from now on: nodes that knew it will be reconnecting. */
  started(): void {
    this.startedAt = this.parts.clock.now();
  }

  /** The service implementation for grpc-js. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      call: (call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>) => this.onCall(call, callback),
      callStream: (call: grpc.ServerWritableStream<CallRequest, StreamReply>) => this.onCallStream(call),
    };
  }

  private onCall(call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>, arrivedAt = this.parts.clock.now(), mayWait = true): void {
    try {
      let cacheSink: PromiseSink | undefined;
      const pending = this.prepare(call, (cacheable) => (cacheable ? (cacheSink = new PromiseSink()) : unarySink(callback)), false, arrivedAt, mayWait);
      if (pending === AWAIT_FUNCTION) {
        this.awaitFunction(call, () => this.onCall(call, callback, arrivedAt, false));
        return;
      }
      if (pending instanceof EasyRemoteError) {
        callback(toServiceError(pending) as grpc.ServiceError);
        return;
      }
      if (cacheSink !== undefined) {
        this.cachedCall(pending, cacheSink, unarySink(callback));
        return;
      }
      call.on('cancelled', () => this.parts.dispatcher.cancel(pending));
      this.parts.dispatcher.start(pending);
    } catch (err) {
      callback(toServiceError(toEasyRemoteError(err)) as grpc.ServiceError);
    }
  }

  private onCallStream(call: grpc.ServerWritableStream<CallRequest, StreamReply>, arrivedAt = this.parts.clock.now(), mayWait = true): void {
    try {
      const pending = this.prepare(call, () => streamSink(call), true, arrivedAt, mayWait);
      if (pending === AWAIT_FUNCTION) {
        this.awaitFunction(call, () => this.onCallStream(call, arrivedAt, false));
        return;
      }
      if (pending instanceof EasyRemoteError) {
        failStream(call, pending);
        return;
      }
      call.on('cancelled', () => this.parts.dispatcher.cancel(pending));
      this.parts.dispatcher.start(pending);
    } catch (err) {
      failStream(call, toEasyRemoteError(err));
    }
  }

  /**
   * Right after a start (a restart, usually) nodes are still reconnecting, so a call to a
   * function nobody has registered yet waits for it until the startup grace ends or the
   * caller's deadline, whichever is first, then runs again (and is refused if still unknown).
   */
  private awaitFunction(call: IncomingCall, resume: () => void): void {
    const { clock, settings } = this.parts;
    const name = call.request.function;
    const callerDeadline = call.getDeadline();
    const callerMs = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
    const waitMs = Math.max(0, Math.min(this.startedAt + settings.startupGraceMs - clock.now(), callerMs - clock.epochMs()));
    let waiters = this.awaiting.get(name);
    if (waiters === undefined) this.awaiting.set(name, (waiters = new Set()));
    const set = waiters;
    const leave = () => {
      if (!set.delete(waiter)) return false;
      this.awaitingCount--;
      if (set.size === 0) this.awaiting.delete(name);
      clock.clearTimeout(timer);
      return true;
    };
    const waiter = () => {
      if (leave()) resume();
    };
    const timer = clock.setTimeout(waiter, waitMs);
    set.add(waiter);
    this.awaitingCount++;
    call.on('cancelled', leave);
  }

  /** Checks a request before any work; a refusal is recorded and returned. */
  private prepare(
    call: IncomingCall,
    makeSink: (cacheable: boolean) => CallSink,
    streaming: boolean,
    arrivedAt: number,
    mayWait: boolean,
  ): PendingCall | EasyRemoteError | typeof AWAIT_FUNCTION {
    const { registry, clock, settings, metrics } = this.parts;
    const req = call.request;
    const client = call.getPeer();
    const refuse = (err: EasyRemoteError) => {
      metrics.refused({ functionName: req.function, client, requestBytes: req.args.length, arrivedAt }, err.code);
      return err;
    };
    const badName = checkFunctionName(req.function);
    if (badName) return refuse(badName);
    const metadata = callerMetadata(call.metadata);
    const badRequest = checkMetadata(metadata) ?? checkCallOptions(req.options, metadata[AFFINITY_METADATA_KEY]);
    if (badRequest) return refuse(badRequest);
    const entry = registry.functions.get(req.function);
    if (entry === undefined) {
      const inGrace = clock.now() - this.startedAt < settings.startupGraceMs && this.awaitingCount < settings.maxAwaiting;
      if (mayWait && inGrace) return AWAIT_FUNCTION;
      return refuse(new FunctionNotFound(`function ${quote(req.function)} is not registered`));
    }
    if (!streaming && entry.config.kind === 'stream') {
      return refuse(new InvalidArgument(`${entry.name} is a stream (generator) function: call it with CallStream and iterate the values`));
    }
    if (req.args.length > settings.maxPayloadBytes) {
      return refuse(
        new PayloadTooLarge(`arguments of ${req.args.length} bytes exceed the gateway's limit of ${settings.maxPayloadBytes} bytes`, {
          limit: { name: 'max_payload_bytes', limit: settings.maxPayloadBytes, actual: req.args.length },
        }),
      );
    }
    const callerDeadline = call.getDeadline();
    const deadline = callDeadline({
      nowMs: clock.epochMs(),
      callerDeadlineMs: callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline,
      graceHeader: metadataString(call.metadata, DEADLINE_GRACE_METADATA_KEY),
      functionTimeoutMs: entry.config.timeoutMs,
      defaultTimeoutMs: settings.defaultTimeoutMs,
    });
    const cacheable = !streaming && entry.config.cacheable && entry.config.cacheTtlMs > 0 && !req.options?.noCache;
    return new PendingCall(this.nextCallId++, entry, req.args, req.options, metadata, deadline, streaming, streaming, makeSink(cacheable), arrivedAt, client);
  }

  /**
   * A cacheable function: identical concurrent calls share one computation and later ones
   * read the stored bytes. The computation is not tied to one caller's cancellation,
   * since others may be waiting for it; its deadline still applies. Errors are not cached.
   */
  private cachedCall(pending: PendingCall, computeSink: PromiseSink, reply: CallSink): void {
    const { entry } = pending;
    const { cache, dispatcher, metrics } = this.parts;
    const key = makeCacheKey(entry.name, entry.config.version, pending.args);
    cache
      .getOrCompute(key, entry.config.cacheTtlMs, () => {
        dispatcher.start(pending);
        return computeSink.promise;
      })
      .then(
        ({ value, source }) => {
          if (source !== 'computed') {
            pending.responseBytes = value.length;
            metrics.callFinished(pending, '', true);
          }
          reply.result(value, source === 'computed' ? pending.nodeId : '', source !== 'computed');
        },
        (err: unknown) => {
          const e = toEasyRemoteError(err);
          // A waiter that joined a failed computation was not recorded by the dispatcher.
          if (!pending.done) metrics.callFinished(pending, e.code);
          reply.error(e);
        },
      );
  }
}
