// Runs calls over node sessions: one attempt at a time, replies matched by attempt id,
// failover when a node is lost, deadlines, client cancellation and stream credit.
import { performance } from 'node:perf_hooks';
import {
  DeadlineExceeded,
  DEFAULT_STREAM_CREDIT,
  errorFromDetail,
  toEasyRemoteError,
  NodeLost,
  Cancelled,
  type EasyRemoteError,
  type Chunk,
  type End,
  type Failure,
  type ProgressFrame,
  type Result,
} from '@easyremote/protocol';
import type { NodeSession } from '../registry/node-session.js';
import type { Router } from '../routing/router.js';
import { Attempt } from './attempt.js';
import type { PendingCall } from './pending-call.js';


/** Errors raised before the handler ran: always safe to try on another node. */
const NOT_STARTED = new Set(['OVERLOADED', 'FUNCTION_NOT_FOUND']);
/** Errors that say nothing about the node's health (see health/outlier-detector.ts). */
const NOT_NODE_FAULT = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'CANCELLED', 'OVERLOADED', 'FUNCTION_NOT_FOUND']);

export interface AttemptOutcome {
  readonly attempt: Attempt;
  readonly ok: boolean;
  /** Whether the outcome says something about the node's health. */
  readonly countsForHealth: boolean;
  readonly latencyMs: number;
  readonly execMs: number;
}

export interface DispatcherHooks {
  /** An attempt was sent to a node. */
  attemptStarted?(attempt: Attempt): void;
  /** Every finished attempt (for strategy learning and outlier detection). */
  attemptFinished?(outcome: AttemptOutcome): void;
  /** Every finished call (for metrics); errorCode '' on success. */
  callFinished?(call: PendingCall, errorCode: string, cached: boolean): void;
  /**
   * Called when no provider has room: return true if the call was queued (the hook calls
   * `redispatch` later), false to refuse it with the router's error.
   */
  enqueue?(call: PendingCall): boolean;
}

export interface DispatcherOptions {
  router: Router;
  initialCredit?: number;
  hooks?: DispatcherHooks;
}

export class Dispatcher {
  private nextAttemptId = 1;
  private readonly attempts = new Map<number, Attempt>();
  private readonly router: Router;
  private readonly initialCredit: number;
  private readonly creditBatch: number;
  hooks: DispatcherHooks;

  constructor(options: DispatcherOptions) {
    this.router = options.router;
    this.initialCredit = options.initialCredit ?? DEFAULT_STREAM_CREDIT;
    this.creditBatch = Math.max(1, this.initialCredit >> 1);
    this.hooks = options.hooks ?? {};
  }

  get inFlight(): number {
    return this.attempts.size;
  }

  start(call: PendingCall): void {
    if (call.deadline > 0) {
      const left = call.deadline - Date.now();
      if (left <= 0) {
        this.fail(call, new DeadlineExceeded(`deadline of ${call.entry.name} passed before dispatch`));
        return;
      }
      call.timer = setTimeout(() => this.expire(call), left);
    }
    this.dispatch(call);
  }

  /** Tries again to place a call that was queued for capacity. */
  redispatch(call: PendingCall): void {
    if (!call.done) this.dispatch(call);
  }

  private dispatch(call: PendingCall): void {
    let decision: ReturnType<Router['route']>;
    try {
      decision = this.router.route(call.entry, call);
    } catch (err) {
      // A strategy that throws must not leave the call hanging (this may run from a node's frame).
      this.fail(call, toEasyRemoteError(err));
      return;
    }
    call.strategy = decision.strategy;
    const provider = decision.provider;
    if (provider === undefined) {
      if (decision.allFull && this.hooks.enqueue?.(call)) return;
      this.fail(call, decision.error!);
      return;
    }
    const now = performance.now();
    const attempt = new Attempt(this.nextAttemptId++, call, provider, now, decision.strategy, decision.context);
    if (call.entry.strategy(decision.strategy).observe) attempt.snapshot = provider.snapshot();
    if (call.dispatchedAt === 0) call.dispatchedAt = now;
    call.attempt = attempt;
    call.attempts++;
    call.nodeId = provider.session.nodeId;
    this.attempts.set(attempt.id, attempt);
    provider.session.attempts.set(attempt.id, attempt);
    provider.inFlight++;
    const attemptTimeout = call.entry.config.healthCheck.timeout;
    if (attemptTimeout > 0) attempt.timer = setTimeout(() => this.attemptTimedOut(attempt, attemptTimeout), attemptTimeout);
    this.hooks.attemptStarted?.(attempt);
    provider.session.send({
      invoke: {
        attemptId: attempt.id,
        callId: call.id,
        attempt: call.attempts,
        function: call.entry.name,
        args: call.args,
        deadlineUnixMs: call.deadline,
        metadata: call.metadata,
        initialCredit: call.streaming ? this.initialCredit : 0,
        wantProgress: call.wantProgress,
      },
    });
  }

  // ---- replies from nodes ------------------------------------------------------------

  /** The attempt, if it is still current and belongs to this session (a node cannot answer for another). */
  private lookup(session: NodeSession, attemptId: number): Attempt | undefined {
    const a = this.attempts.get(attemptId);
    return a !== undefined && a.provider.session === session ? a : undefined;
  }

  private take(session: NodeSession, attemptId: number): Attempt | undefined {
    const a = this.lookup(session, attemptId);
    if (a !== undefined) {
      this.attempts.delete(attemptId);
      session.attempts.delete(attemptId);
    }
    return a;
  }

  onResult(session: NodeSession, frame: Result): void {
    const a = this.take(session, frame.attemptId);
    if (a === undefined) return;
    this.closeAttempt(a, true, true, frame.execMs);
    const call = a.call;
    if (call.done) return;
    call.responseBytes = frame.payload.length;
    this.finish(call, '', () => call.sink.result(frame.payload, session.nodeId, false));
  }

  onChunk(session: NodeSession, frame: Chunk): void {
    const a = this.lookup(session, frame.attemptId);
    if (a === undefined || a.call.done) return;
    const call = a.call;
    call.chunks++;
    call.responseBytes += frame.payload.length;
    a.owedCredit++;
    if (!call.sink.chunk(frame.payload)) {
      if (!a.blocked) {
        a.blocked = true;
        call.sink.onDrain(() => {
          a.blocked = false;
          this.grantCredit(a);
        });
      }
      return;
    }
    if (!a.blocked && a.owedCredit >= this.creditBatch) this.grantCredit(a);
  }

  private grantCredit(a: Attempt): void {
    if (a.owedCredit === 0 || !this.attempts.has(a.id)) return;
    a.provider.session.send({ credit: { attemptId: a.id, chunks: a.owedCredit } });
    a.owedCredit = 0;
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
    const lost = [...session.attempts.values()];
    session.attempts.clear();
    for (const a of lost) {
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

  private retry(call: PendingCall, failedNode: string): boolean {
    // healthCheck.retryCount (the gateway's default when the function sets none).
    if (call.attempts > call.entry.config.healthCheck.retryCount) return false;
    (call.tried ??= new Set()).add(failedNode);
    this.dispatch(call);
    return true;
  }

  // ---- the caller's side -----------------------------------------------------------

  /** The client cancelled or went away: tell the node, record, reply to no one. */
  cancel(call: PendingCall): void {
    if (call.done) return;
    if (call.deadline > 0 && Date.now() >= call.deadline) {
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
    this.attempts.delete(a.id);
    a.provider.session.attempts.delete(a.id);
    a.provider.session.send({ cancel: { attemptId: a.id, reason } });
    // A deadline the node did not meet counts against it; a client's cancel does not.
    this.closeAttempt(a, false, reason === 'deadline' || reason === 'attempt-timeout', 0);
  }

  private closeAttempt(a: Attempt, ok: boolean, countsForHealth: boolean, execMs: number): void {
    const latencyMs = performance.now() - a.dispatchedAt;
    clearTimeout(a.timer);
    a.provider.inFlight--;
    a.provider.recordOutcome(ok, latencyMs, execMs);
    if (a.call.attempt === a) a.call.attempt = undefined;
    a.call.execMs = execMs;
    this.hooks.attemptFinished?.({ attempt: a, ok, countsForHealth, latencyMs, execMs });
  }

  /** Fails a call that has not been dispatched or whose attempt is over. */
  fail(call: PendingCall, err: EasyRemoteError): void {
    if (call.done) return;
    this.finish(call, err.code, () => call.sink.error(err));
  }

  /** Marks the call done, replies (if anyone listens), then records it: the caller never waits on metrics. */
  private finish(call: PendingCall, errorCode: string, reply?: () => void): void {
    call.done = true;
    clearTimeout(call.timer);
    reply?.();
    this.hooks.callFinished?.(call, errorCode, false);
  }

  /** Gateway shutdown: every open call ends now. */
  shutdown(): void {
    for (const a of [...this.attempts.values()]) {
      this.abandonAttempt(a.call, 'gateway-shutdown');
      this.fail(a.call, new Cancelled('the gateway is shutting down'));
    }
  }
}
