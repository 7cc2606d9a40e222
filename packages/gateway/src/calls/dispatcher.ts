// Runs calls over node sessions: one attempt at a time, replies matched by attempt id,
// failover when a node is lost, deadlines, client cancellation and stream credit.
//
// The path is one-way. A call comes in from intake, the router decides, the attempt goes
// to the node; the attempt's outcome goes straight to the strategy instance that picked
// it and to the attempt listener (outlier detection), the call's end to the recorder.
// Every collaborator is given at construction.
import {
  Cancelled,
  DeadlineExceeded,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_STREAM_CREDIT,
  NodeLost,
  PAYLOAD_PART_CREDIT,
  PayloadTooLarge,
  ProtocolError,
  errorFromDetail,
  resultProfile,
  toEasyRemoteError,
  type Chunk,
  type EasyRemoteError,
  type End,
  type Failure,
  type ProgressFrame,
  type Result,
  type ResultPartFrame,
} from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { NodeSession } from '../registry/node-session.js';
import type { Router } from '../routing/router.js';
import type { AdmissionQueue } from './admission-queue.js';
import type { AttemptListener } from './attempt.js';
import { Attempt, type PendingCall } from './pending-call.js';

/** Errors raised before the handler ran: always safe to try on another node. */
const NOT_STARTED = new Set(['OVERLOADED', 'FUNCTION_NOT_FOUND']);
/** Errors that say nothing about the node's health (see health/outlier-detector.ts). */
const NOT_NODE_FAULT = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'CANCELLED', 'OVERLOADED', 'FUNCTION_NOT_FOUND']);

/**
 * The execution time a node reports with its reply. Nodes are written in any language and
 * may be hostile: a figure that cannot be true (NaN, infinite, negative) counts as unknown
 * (0) before it reaches provider history, strategies or metrics.
 */
function reportedExecMs(ms: number): number {
  return Number.isFinite(ms) && ms >= 0 ? ms : 0;
}

/** Told about every finished call, exactly once (metrics, the caller's limits); errorCode '' on success. */
export interface CallRecorder {
  callFinished(call: PendingCall, errorCode: string, cached?: boolean): void;
}

export interface DispatcherParts {
  router: Router;
  admission: AdmissionQueue;
  attempts: AttemptListener;
  recorder: CallRecorder;
  clock: Clock;
  /** How long a call waits for a provider when its function has none usable (ms). */
  providerGapMs: number;
  /** Chunks a streaming node may send before it gets more credit. */
  initialCredit?: number;
  /**
   * Largest result an ordinary (non-stream) call may have, all its parts together (the
   * gateway's maxPayloadBytes; default 64 MiB). A node sending more fails the call
   * PAYLOAD_TOO_LARGE: a per-call RPC and the cache hold a result whole until it ends.
   */
  maxResultBytes?: number;
}

export class Dispatcher {
  private nextAttemptId = 1;
  private readonly attempts = new Map<number, Attempt>();
  /** Attempts in flight per node session, for failover when a session is lost. */
  private readonly bySession = new Map<NodeSession, Map<number, Attempt>>();
  private readonly initialCredit: number;
  private readonly maxResultBytes: number;

  constructor(private readonly parts: DispatcherParts) {
    this.initialCredit = parts.initialCredit ?? DEFAULT_STREAM_CREDIT;
    this.maxResultBytes = parts.maxResultBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  get inFlight(): number {
    return this.attempts.size;
  }

  start(call: PendingCall): void {
    const { clock } = this.parts;
    if (call.deadline > 0) {
      const left = call.deadline - clock.epochMs();
      if (left <= 0) {
        this.fail(call, new DeadlineExceeded(`deadline of ${call.entry.name} passed before dispatch`));
        return;
      }
      call.timer = clock.setTimeout(() => this.expire(call), left);
    }
    this.dispatch(call);
  }

  /** Capacity may have freed up for this function: waiting calls try again, oldest first. */
  pump(entry: FunctionEntry): void {
    const { admission, router } = this.parts;
    // Bounded by the queue's length now: a call that finds no room again goes to the back.
    for (let n = admission.size(entry.name); n > 0 && router.hasRoom(entry); n--) {
      const call = admission.next(entry);
      if (call === undefined) return;
      this.dispatch(call);
    }
  }

  private dispatch(call: PendingCall): void {
    let decision: ReturnType<Router['route']>;
    try {
      decision = this.parts.router.route(call);
    } catch (err) {
      // Routing must never leave a call hanging (this may run from a node's frame).
      this.fail(call, toEasyRemoteError(err));
      return;
    }
    call.strategy = decision.strategyName;
    if (decision.type === 'queue') {
      this.wait(call, decision.reason, decision.error);
      return;
    }
    this.parts.clock.clearTimeout(call.gapTimer);
    call.gapTimer = undefined;
    if (decision.type === 'refuse') {
      this.fail(call, decision.error);
      return;
    }
    const { provider, strategy, context } = decision;
    const now = this.parts.clock.now();
    // Chunks for a stream; for a call with one result, the parts of a large result.
    const credit = call.streaming ? this.initialCredit : PAYLOAD_PART_CREDIT;
    const attempt = new Attempt(this.nextAttemptId++, call, provider, now, strategy, context, strategy.observe ? provider.snapshot() : undefined, credit);
    if (call.dispatchedAt === 0) call.dispatchedAt = now;
    call.attempt = attempt;
    call.attempts++;
    call.nodeId = provider.session.nodeId;
    this.attempts.set(attempt.id, attempt);
    let mine = this.bySession.get(provider.session);
    if (mine === undefined) this.bySession.set(provider.session, (mine = new Map()));
    mine.set(attempt.id, attempt);
    provider.inFlight++;
    provider.session.inFlight++;
    const attemptTimeout = call.entry.config.healthCheck.timeout;
    if (attemptTimeout > 0) attempt.timer = this.parts.clock.setTimeout(() => this.attemptTimedOut(attempt, attemptTimeout), attemptTimeout);
    this.parts.attempts.attemptStarted(attempt);
    provider.session.send({
      invoke: {
        attemptId: attempt.id,
        callId: call.id,
        attempt: call.attempts,
        function: call.entry.name,
        args: call.args,
        deadlineUnixMs: call.deadline,
        metadata: call.metadata,
        initialCredit: credit,
        wantProgress: call.wantProgress,
        caller: call.caller.callerName,
        argsSize: call.argsRelay?.total ?? 0,
        portableResult: resultProfile(call.options) === 'portable',
      },
    });
    const session = provider.session;
    call.argsRelay?.attach({
      send: (data) => session.send({ argsPart: { attemptId: attempt.id, data } }),
      writable: () => session.writable(),
      whenWritable: (listener) => session.whenWritable(listener),
    });
  }

  /**
   * A call that cannot be placed now waits in the admission queue: for room until its
   * deadline, for a provider at most the gap window (then `error`). Beyond the queue's
   * limits it gets `error` at once, naming the limit.
   */
  private wait(call: PendingCall, reason: 'full' | 'gap', error: EasyRemoteError): void {
    const { admission, clock, providerGapMs } = this.parts;
    const exceeded = admission.enqueue(call);
    if (exceeded !== undefined) {
      const detail = error.toDetail();
      this.fail(call, errorFromDetail({ ...detail, message: `${detail.message}; the gateway's ${exceeded.name.replaceAll('_', ' ')} limit of ${exceeded.limit} is reached`, limitName: exceeded.name, limit: exceeded.limit, actual: exceeded.actual }));
      return;
    }
    if (reason === 'gap' && call.gapTimer === undefined) {
      call.gapTimer = clock.setTimeout(() => this.fail(call, error), providerGapMs);
    }
  }

  /** Calls waiting for any function try again (a lease recovered, an ejection ended). */
  pumpAll(entries: ReadonlyMap<string, FunctionEntry>): void {
    for (const name of [...this.parts.admission.waitingFunctions()]) {
      const entry = entries.get(name);
      if (entry !== undefined) this.pump(entry);
    }
  }

  // ---- replies from nodes ------------------------------------------------------------

  /** The attempt, if it is still current and belongs to this session (a node cannot answer for another). */
  private lookup(session: NodeSession, attemptId: number): Attempt | undefined {
    const a = this.attempts.get(attemptId);
    return a !== undefined && a.provider.session === session ? a : undefined;
  }

  private take(session: NodeSession, attemptId: number): Attempt | undefined {
    const a = this.lookup(session, attemptId);
    if (a !== undefined) this.forget(a);
    return a;
  }

  private forget(a: Attempt): void {
    this.attempts.delete(a.id);
    const mine = this.bySession.get(a.provider.session);
    mine?.delete(a.id);
    if (mine?.size === 0) this.bySession.delete(a.provider.session);
  }

  onResult(session: NodeSession, frame: Result): void {
    const a = this.take(session, frame.attemptId);
    if (a === undefined) return;
    this.closeAttempt(a, true, true, frame.execMs);
    const call = a.call;
    if (call.done) return;
    call.responseBytes += frame.payload.length;
    if (call.responseBytes > this.maxResultBytes) {
      this.fail(call, this.resultTooLarge(call, session.nodeId));
      return;
    }
    this.finish(call, '', () => call.sink.result(frame.payload, session.nodeId, false));
  }

  onChunk(session: NodeSession, frame: Chunk): void {
    this.onPayloadPiece(session, frame.attemptId, frame.payload, 'chunk');
  }

  onResultPart(session: NodeSession, frame: ResultPartFrame): void {
    this.onPayloadPiece(session, frame.attemptId, frame.data, 'result part');
  }

  /** A stream chunk or a part of a large result: relayed within credit, credit returned as the consumer takes it. */
  private onPayloadPiece(session: NodeSession, attemptId: number, data: Buffer, kind: 'chunk' | 'result part'): void {
    const a = this.lookup(session, attemptId);
    if (a === undefined || a.call.done) return;
    if (a.credit <= 0) {
      // Past its credit the node is not holding back for a slow consumer: what the
      // gateway buffers per stream stays bounded by credit × the payload limit only if
      // such frames are refused. The attempt fails and counts against the node.
      this.violation(a, new ProtocolError(`node ${session.nodeId} sent a ${kind} of ${a.call.entry.name} beyond its credit`, { nodeId: session.nodeId }));
      return;
    }
    a.credit--;
    const call = a.call;
    // Counts anything delivered to the caller: a call that delivered part of its answer is never retried.
    call.chunks++;
    call.responseBytes += data.length;
    // A stream's chunks have no total; a result's parts are one value, held whole by some sinks.
    if (kind === 'result part' && call.responseBytes > this.maxResultBytes) {
      this.forget(a);
      a.provider.session.send({ cancel: { attemptId: a.id, reason: 'result-too-large' } });
      this.closeAttempt(a, false, false, 0);
      this.fail(call, this.resultTooLarge(call, session.nodeId));
      return;
    }
    a.owedCredit++;
    if (!(kind === 'chunk' ? call.sink.chunk(data) : call.sink.resultPart(data))) {
      if (!a.blocked) {
        a.blocked = true;
        call.sink.onDrain(() => {
          a.blocked = false;
          this.grantCredit(a);
        });
      }
      return;
    }
    if (!a.blocked && a.owedCredit >= a.creditBatch) this.grantCredit(a);
  }

  private grantCredit(a: Attempt): void {
    if (a.owedCredit === 0 || !this.attempts.has(a.id)) return;
    a.provider.session.send({ credit: { attemptId: a.id, chunks: a.owedCredit } });
    a.credit += a.owedCredit;
    a.owedCredit = 0;
  }

  private resultTooLarge(call: PendingCall, nodeId: string): PayloadTooLarge {
    return new PayloadTooLarge(`the result of ${call.entry.name} from node ${nodeId} is larger than max_payload_bytes (${this.maxResultBytes} bytes)`, {
      nodeId,
      limit: { name: 'max_payload_bytes', limit: this.maxResultBytes, actual: call.responseBytes },
    });
  }

  /** The node broke the stream protocol on this attempt: cancel it there and fail the call. */
  private violation(a: Attempt, err: EasyRemoteError): void {
    this.forget(a);
    a.provider.session.send({ cancel: { attemptId: a.id, reason: 'protocol-error' } });
    this.closeAttempt(a, false, true, 0);
    this.fail(a.call, err);
  }

  onEnd(session: NodeSession, frame: End): void {
    const a = this.take(session, frame.attemptId);
    if (a === undefined) return;
    this.closeAttempt(a, true, true, frame.execMs);
    if (a.call.done) return;
    this.finish(a.call, '', () => a.call.sink.end());
  }

  onProgress(session: NodeSession, frame: ProgressFrame): void {
    const a = this.lookup(session, frame.attemptId);
    if (a === undefined || a.call.done || !a.call.wantProgress) return;
    a.call.sink.progress(frame.fraction, frame.message);
  }

  onError(session: NodeSession, frame: Failure): void {
    const a = this.take(session, frame.attemptId);
    if (a === undefined) return;
    const detail = frame.error;
    const err = detail ? errorFromDetail({ ...detail, nodeId: detail.nodeId || session.nodeId }) : new NodeLost(`node ${session.nodeId} failed without a reason`);
    this.closeAttempt(a, false, !NOT_NODE_FAULT.has(err.code), frame.execMs);
    const call = a.call;
    if (call.done) return;
    if (NOT_STARTED.has(err.code) && this.retry(call, session.nodeId)) return;
    this.fail(call, err);
  }

  /** The node's stream is gone: retry what is safe to retry, fail the rest now. */
  onSessionLost(session: NodeSession, reason: string): void {
    const mine = this.bySession.get(session);
    if (mine === undefined) return;
    this.bySession.delete(session);
    for (const a of mine.values()) {
      this.attempts.delete(a.id);
      this.closeAttempt(a, false, true, 0);
      const call = a.call;
      if (call.done) continue;
      if (call.entry.config.idempotent && call.chunks === 0 && this.retry(call, session.nodeId)) continue;
      this.fail(call, new NodeLost(`node ${session.nodeId} was lost during ${call.entry.name} (${reason})`, { nodeId: session.nodeId }));
    }
  }

  /** healthCheck.timeout: the node took too long for this attempt. */
  private attemptTimedOut(a: Attempt, timeoutMs: number): void {
    const call = a.call;
    if (call.done || call.attempt !== a) return;
    const nodeId = a.provider.session.nodeId;
    this.abandonAttempt(call, 'attempt-timeout');
    if (call.entry.config.idempotent && call.chunks === 0 && this.retry(call, nodeId)) return;
    this.fail(call, new DeadlineExceeded(`${call.entry.name} on node ${nodeId} exceeded its healthCheck timeout of ${timeoutMs} ms`, { nodeId }));
  }

  /**
   * Sends the call to another node, within healthCheck.retryCount. When no other node
   * could take it, the caller gets the error that made it retry (the node's own refusal,
   * or NODE_LOST), which says more than "no node available".
   */
  private retry(call: PendingCall, failedNode: string): boolean {
    if (call.attempts > call.entry.config.healthCheck.retryCount) return false;
    // Arguments relayed in parts are gone once sent: such a call can run only once.
    if (call.argsRelay !== undefined) return false;
    (call.tried ??= new Set()).add(failedNode);
    if (!this.parts.router.hasUntried(call)) return false;
    this.dispatch(call);
    return true;
  }

  // ---- the caller's side -----------------------------------------------------------

  /** The client cancelled or went away: tell the node, record, reply to no one. */
  cancel(call: PendingCall): void {
    if (call.done) return;
    if (call.deadline > 0 && this.parts.clock.epochMs() >= call.deadline) {
      this.expire(call);
      return;
    }
    this.abandonAttempt(call, 'client-cancelled');
    this.finish(call, 'CANCELLED');
  }

  private expire(call: PendingCall): void {
    if (call.done) return;
    this.abandonAttempt(call, 'deadline');
    this.fail(call, new DeadlineExceeded(`${call.entry.name} did not finish before its deadline${call.nodeId ? ` (node ${call.nodeId})` : ''}`));
  }

  private abandonAttempt(call: PendingCall, reason: string): void {
    const a = call.attempt;
    if (a === undefined || !this.attempts.has(a.id)) return;
    this.forget(a);
    a.provider.session.send({ cancel: { attemptId: a.id, reason } });
    // A deadline the node did not meet counts against it; a client's cancel does not.
    this.closeAttempt(a, false, reason === 'deadline' || reason === 'attempt-timeout', 0);
  }

  /** The attempt is over: its slot frees, and its outcome goes to whoever learns from it. */
  private closeAttempt(a: Attempt, ok: boolean, countsForHealth: boolean, reportedMs: number): void {
    const latencyMs = this.parts.clock.now() - a.dispatchedAt;
    const execMs = reportedExecMs(reportedMs);
    this.parts.clock.clearTimeout(a.timer);
    a.provider.inFlight--;
    a.provider.session.inFlight--;
    const call = a.call;
    if (call.attempt === a) call.attempt = undefined;
    call.execMs = execMs;
    // An attempt abandoned for reasons that are not the node's (the caller cancelled, bad
    // input, shutdown) teaches nothing about the node's speed or reliability.
    if (ok || countsForHealth) {
      a.provider.recordOutcome(ok, latencyMs, execMs);
      if (a.snapshot !== undefined) a.strategy.observe?.({ nodeId: a.provider.session.nodeId, ok, latencyMs, execMs, candidate: a.snapshot, context: a.context });
    }
    this.parts.attempts.attemptFinished({ attempt: a, ok, countsForHealth, latencyMs, execMs });
    this.pump(call.entry);
  }

  /** Fails a call that has not been dispatched or whose attempt is over. */
  fail(call: PendingCall, err: EasyRemoteError): void {
    if (call.done) return;
    this.finish(call, err.code, () => call.sink.error(err));
  }

  /** Marks the call done, replies (if anyone listens), then records it: the caller never waits on metrics. */
  private finish(call: PendingCall, errorCode: string, reply?: () => void): void {
    call.done = true;
    call.argsRelay?.detach();
    this.parts.clock.clearTimeout(call.timer);
    this.parts.clock.clearTimeout(call.gapTimer);
    this.parts.admission.remove(call);
    reply?.();
    this.parts.recorder.callFinished(call, errorCode);
  }

  /** Gateway shutdown: every open call ends now, waiting ones included. */
  shutdown(): void {
    const stopping = new Cancelled('the gateway is shutting down');
    for (const call of this.parts.admission.takeAll()) this.fail(call, stopping);
    for (const a of [...this.attempts.values()]) {
      this.abandonAttempt(a.call, 'gateway-shutdown');
      this.fail(a.call, stopping);
    }
  }
}
