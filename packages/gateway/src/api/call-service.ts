// The Gateway service clients call: Call (unary) and CallStream (server streaming).
// Intake checks the caller, the function and the request before any work, computes the
// deadline, and hands the call to the dispatcher (through the result cache when the
// function allows it).
import type * as grpc from '@grpc/grpc-js';
import {
  AUTH_METADATA_KEY,
  DEADLINE_GRACE_METADATA_KEY,
  EasyRemoteError,
  FunctionNotFound,
  InvalidArgument,
  PayloadTooLarge,
  resultProfile,
  toEasyRemoteError,
  toServiceError,
  type CallReply,
  type CallRequest,
  type StreamReply,
} from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import { makeCacheKey, type ResultCache } from '../cache/result-cache.js';
import type { CallSink } from '../calls/call-sink.js';
import { callDeadline } from '../calls/deadline.js';
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
}

export interface CallServiceParts {
  registry: Registry;
  dispatcher: Dispatcher;
  auth: Authenticator;
  cache: ResultCache;
  metrics: MetricsRecorder;
  clock: Clock;
  settings: CallServiceSettings;
}

type IncomingCall = grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>;

export class CallService {
  private nextCallId = 1;

  constructor(private readonly parts: CallServiceParts) {}

  /** The service implementation for grpc-js. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      call: (call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>) => this.onCall(call, callback),
      callStream: (call: grpc.ServerWritableStream<CallRequest, StreamReply>) => this.onCallStream(call),
    };
  }

  private onCall(call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>): void {
    try {
      let cacheSink: PromiseSink | undefined;
      const pending = this.prepare(call, (cacheable) => (cacheable ? (cacheSink = new PromiseSink()) : unarySink(callback)), false);
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

  private onCallStream(call: grpc.ServerWritableStream<CallRequest, StreamReply>): void {
    try {
      const pending = this.prepare(call, () => streamSink(call), true);
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

  /** Checks a request before any work; a refusal is recorded and returned. */
  private prepare(call: IncomingCall, makeSink: (cacheable: boolean) => CallSink, streaming: boolean): PendingCall | EasyRemoteError {
    const { registry, auth, clock, settings, metrics } = this.parts;
    const arrivedAt = clock.now();
    const req = call.request;
    const client = call.getPeer();
    const refuse = (err: EasyRemoteError) => {
      metrics.refused({ functionName: req.function, client, requestBytes: req.args.length, arrivedAt }, err.code);
      return err;
    };
    const denied = auth.client(metadataString(call.metadata, AUTH_METADATA_KEY));
    if (denied) return refuse(denied);
    const entry = registry.functions.get(req.function);
    if (entry === undefined) {
      return refuse(req.function ? new FunctionNotFound(`function ${JSON.stringify(req.function)} is not registered`) : new InvalidArgument('CallRequest.function is empty'));
    }
    if (!streaming && entry.config.kind === 'stream') {
      return refuse(new InvalidArgument(`${entry.name} is a stream (generator) function: call it with CallStream and iterate the values`));
    }
    if (req.args.length > settings.maxPayloadBytes) {
      return refuse(new PayloadTooLarge(`arguments of ${req.args.length} bytes exceed the gateway's limit of ${settings.maxPayloadBytes} bytes`));
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
    return new PendingCall(this.nextCallId++, entry, req.args, req.options, callerMetadata(call.metadata), deadline, streaming, streaming, makeSink(cacheable), arrivedAt, client);
  }

  /**
   * A cacheable function: identical concurrent calls share one computation and later ones
   * read the stored bytes. The computation is not tied to one caller's cancellation,
   * since others may be waiting for it; its deadline still applies. Errors are not cached.
   */
  private cachedCall(pending: PendingCall, computeSink: PromiseSink, reply: CallSink): void {
    const { entry } = pending;
    const { cache, dispatcher, metrics } = this.parts;
    const key = makeCacheKey(entry.name, entry.config.version, resultProfile(pending.options), pending.args);
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
