// Where every client call enters, whatever carried it (Call, CallStream or a Session
// frame): the request's limits are checked before any work, the function is found (or
// awaited for a while just after a start), the deadline is computed, and the call goes to
// the dispatcher, through the result cache when the function allows it.
import {
  AFFINITY_METADATA_KEY,
  EasyRemoteError,
  FunctionNotFound,
  GatewayUnavailable,
  IdempotencyMismatch,
  InvalidArgument,
  PayloadTooLarge,
  PermissionDenied,
  quote,
  resultProfile,
  toEasyRemoteError,
  type CallOptions,
} from '@easyremote/protocol';
import { makeCacheKey, type ResultCache } from '../cache/result-cache.js';
import type { PrincipalLimits } from '../auth/principal-limits.js';
import type { Principal } from '../auth/principals.js';
import type { ArgsRelay } from '../calls/args-relay.js';
import type { CallSink } from '../calls/call-sink.js';
import { callDeadline } from '../calls/deadline.js';
import type { CallRecorder, Dispatcher } from '../calls/dispatcher.js';
import type { OpenCalls } from '../calls/open-calls.js';
import { PendingCall } from '../calls/pending-call.js';
import { PromiseSink } from '../calls/promise-sink.js';
import { checkCallOptions, checkFunctionName, checkMetadata } from '../calls/request-limits.js';
import type { Clock } from '../clock.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { Registry } from '../registry/registry.js';

/** A call as its transport received it. */
export interface IncomingCall {
  readonly function: string;
  readonly args: Buffer;
  readonly options: CallOptions | undefined;
  /** The caller's metadata as handlers will see it (transport headers already removed). */
  readonly metadata: Record<string, string>;
  /** The caller's deadline, epoch ms; Infinity when it set none. */
  readonly callerDeadlineMs: number;
  /** The caller's deadline-grace claim, when its transport carries one. */
  readonly graceHeader: string | undefined;
  /** End the call exactly at the caller's deadline (no margin: nothing on the caller's side resets a stream). */
  readonly exactDeadline?: boolean;
  /** CallStream semantics (chunks, progress) rather than Call's (one result). */
  readonly streaming: boolean;
  /** Whether progress messages are wanted; by default exactly when `streaming`. */
  readonly wantProgress?: boolean;
  /** Who called: the peer address, and the authenticated principal. */
  readonly client: string;
  readonly caller: Principal;
  /** clock.now when it arrived. */
  readonly arrivedAt: number;
  /** Set when the arguments arrive in parts: `args` is the first, the relay brings the rest. */
  readonly argsRelay?: ArgsRelay;
  /**
   * The caller will resend the call to another gateway if this one is lost before the call
   * ends: a function that is not idempotent refuses it IDEMPOTENCY_MISMATCH, unrun.
   */
  readonly assumeIdempotent?: boolean;
  /**
   * Told whether the function is idempotent once it is found and the call's limits passed,
   * before the call is refused for a wrong assumption or routed: the transport tells the
   * caller (a session's SessionFunction frame, a per-call RPC's response header).
   */
  readonly onFunction?: (name: string, idempotent: boolean) => void;
}

/** A call admitted at intake: the caller's transport cancels it through this. */
export interface AdmittedCall {
  cancel(): void;
}

export interface CallIntakeSettings {
  maxPayloadBytes: number;
  /** Time limit for functions that set none and callers that send no deadline (ms). */
  defaultTimeoutMs: number;
  /** After start, how long calls to not-yet-registered functions wait for them (ms). */
  startupGraceMs: number;
  /** Calls that may wait for a function at once. */
  maxAwaiting: number;
}

export interface CallIntakeParts {
  registry: Registry;
  dispatcher: Dispatcher;
  cache: ResultCache;
  /** Refusals at intake are recorded here. */
  metrics: MetricsRecorder;
  /** Finished calls (cache hits included) are reported here, exactly once each. */
  recorder: CallRecorder;
  /** Each principal's own limits; a slot taken here is released when the call is recorded as finished. */
  limits: PrincipalLimits;
  /** Calls admitted and not yet finished: counted here when admitted, by the recorder's owner when finished. */
  open: OpenCalls;
  clock: Clock;
  settings: CallIntakeSettings;
}

export class CallIntake {
  private nextCallId = 1;
  /** clock.now when the gateway started listening; calls to unknown functions wait for a while after it. */
  private startedAt = -Infinity;
  /** Calls waiting for a function to be registered, by name. */
  private readonly awaiting = new Map<string, Set<() => void>>();
  private awaitingCount = 0;
  /** Why the gateway takes no new calls, once it stopped taking them. */
  private closedReason: string | undefined;

  constructor(private readonly parts: CallIntakeParts) {
    parts.registry.on('function-added', (entry) => {
      for (const resume of [...(this.awaiting.get(entry.name) ?? [])]) resume();
    });
  }

  /** The gateway listens from now on: nodes that knew it will be reconnecting. */
  started(): void {
    this.startedAt = this.parts.clock.now();
  }

  /**
   * Takes no new calls from now on (the gateway is stopping): each is refused
   * GATEWAY_UNAVAILABLE, not run, so its caller may send it to another gateway. Calls
   * still waiting for their function to be registered are refused the same way now;
   * calls already admitted go on.
   */
  close(reason: string): void {
    this.closedReason = reason;
    for (const waiters of [...this.awaiting.values()]) for (const resume of [...waiters]) resume();
  }

  /** Takes a call in; its outcome (a refusal included) goes to `reply`. */
  admit(call: IncomingCall, reply: CallSink): AdmittedCall {
    const admitted: AdmittedCall = { cancel: () => undefined };
    const run = (mayWait: boolean) => {
      try {
        const checked = this.check(call, mayWait);
        if (checked === 'await') {
          admitted.cancel = this.awaitFunction(call, () => run(false));
          return;
        }
        if (checked instanceof EasyRemoteError) {
          reply.error(checked);
          return;
        }
        const { entry, deadline } = checked;
        // Arguments in parts are never held whole, so they cannot be hashed into a cache key.
        const cacheable = !call.streaming && call.argsRelay === undefined && entry.config.cacheable && entry.config.cacheTtlMs > 0 && !call.options?.noCache;
        const compute = cacheable ? new PromiseSink() : reply;
        const pending = new PendingCall(this.nextCallId++, entry, call.args, call.options, call.metadata, deadline, call.streaming, call.wantProgress ?? call.streaming, compute, call.arrivedAt, call.client);
        pending.argsRelay = call.argsRelay;
        pending.caller = call.caller;
        if (cacheable) {
          // Identical calls share one computation; it is not tied to one caller's cancellation.
          this.cachedCall(pending, compute as PromiseSink, reply);
          return;
        }
        admitted.cancel = () => this.parts.dispatcher.cancel(pending);
        this.parts.dispatcher.start(pending);
      } catch (err) {
        reply.error(toEasyRemoteError(err));
      }
    };
    run(true);
    return admitted;
  }

  /** Checks a request before any work; a refusal is recorded and returned. */
  private check(call: IncomingCall, mayWait: boolean) {
    const { registry, clock, settings, metrics } = this.parts;
    const refuse = (err: EasyRemoteError) => {
      metrics.refused({ functionName: call.function, client: call.client, caller: call.caller, requestBytes: call.args.length, arrivedAt: call.arrivedAt }, err.code);
      return err;
    };
    if (this.closedReason !== undefined) return refuse(new GatewayUnavailable(`${this.closedReason} and takes no new calls; ${quote(call.function)} was not run`));
    const badName = checkFunctionName(call.function);
    if (badName) return refuse(badName);
    const badRequest = checkMetadata(call.metadata) ?? checkCallOptions(call.options, call.metadata[AFFINITY_METADATA_KEY]);
    if (badRequest) return refuse(badRequest);
    if (!call.caller.mayCall(call.function)) return refuse(new PermissionDenied(`${call.caller.name} may not call ${quote(call.function)}`));
    const entry = registry.functions.get(call.function);
    if (entry === undefined) {
      const inGrace = clock.now() - this.startedAt < settings.startupGraceMs && this.awaitingCount < settings.maxAwaiting;
      if (mayWait && inGrace) return 'await' as const;
      return refuse(new FunctionNotFound(`function ${quote(call.function)} is not registered`));
    }
    if (!call.streaming && entry.config.kind === 'stream') {
      return refuse(new InvalidArgument(`${entry.name} is a stream (generator) function: call it with CallStream and iterate the values`));
    }
    const argsBytes = call.argsRelay?.total ?? call.args.length;
    if (argsBytes > settings.maxPayloadBytes) {
      return refuse(
        new PayloadTooLarge(`arguments of ${argsBytes} bytes exceed the gateway's limit of ${settings.maxPayloadBytes} bytes`, {
          limit: { name: 'max_payload_bytes', limit: settings.maxPayloadBytes, actual: argsBytes },
        }),
      );
    }
    const idempotent = entry.config.idempotent;
    call.onFunction?.(entry.name, idempotent);
    if (call.assumeIdempotent && !idempotent) {
      return refuse(new IdempotencyMismatch(`${entry.name} is not idempotent on this gateway; the call was not run: send it again without assuming it is`));
    }
    const limited = this.parts.limits.acquire(call.caller);
    if (limited) return refuse(limited);
    this.parts.open.opened();
    const deadline = callDeadline({
      nowMs: clock.epochMs(),
      callerDeadlineMs: call.callerDeadlineMs,
      graceHeader: call.graceHeader,
      exact: call.exactDeadline,
      functionTimeoutMs: entry.config.timeoutMs,
      defaultTimeoutMs: settings.defaultTimeoutMs,
    });
    return { entry, deadline };
  }

  /**
   * Right after a start (a restart, usually) nodes are still reconnecting, so a call to a
   * function nobody has registered yet waits for it until the startup grace ends or the
   * caller's deadline, whichever is first, then runs again (and is refused if still
   * unknown). Returns what cancels the wait.
   */
  private awaitFunction(call: IncomingCall, resume: () => void): () => void {
    const { clock, settings } = this.parts;
    const name = call.function;
    const waitMs = Math.max(0, Math.min(this.startedAt + settings.startupGraceMs - clock.now(), call.callerDeadlineMs - clock.epochMs()));
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
    return () => void leave();
  }

  /**
   * A cacheable function: identical concurrent calls share one computation and later ones
   * read the stored bytes. The computation is not tied to one caller's cancellation,
   * since others may be waiting for it; its deadline still applies. Errors are not cached.
   */
  private cachedCall(pending: PendingCall, computeSink: PromiseSink, reply: CallSink): void {
    const { entry } = pending;
    const { cache, dispatcher, recorder } = this.parts;
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
            recorder.callFinished(pending, '', true);
          }
          reply.result(value, source === 'computed' ? pending.nodeId : '', source !== 'computed');
        },
        (err: unknown) => {
          const e = toEasyRemoteError(err);
          // A waiter that joined a failed computation was not recorded by the dispatcher.
          if (!pending.done) recorder.callFinished(pending, e.code);
          reply.error(e);
        },
      );
  }
}
