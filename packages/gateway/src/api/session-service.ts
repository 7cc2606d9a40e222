// Gateway.Session: many calls multiplexed over one bidirectional stream. Each call is a
// SessionCall frame in and result / chunk / progress / end / error frames out, all naming
// the client's call id; frames produced in one turn go out as one batch. Calls go through
// the same intake as Call and CallStream, so limits, deadlines, errors and the cache
// behave exactly as there.
import {
  DEFAULT_STREAM_CREDIT,
  InvalidArgument,
  MAX_SESSION_CALLS,
  Overloaded,
  SessionServer,
  type EasyRemoteError,
  type ServerFrame,
  type SessionCall,
  type SessionStream,
} from '@easyremote/protocol';
import { ArgsRelay } from '../calls/args-relay.js';
import type { CallSink } from '../calls/call-sink.js';
import type { Clock } from '../clock.js';
import type { AdmittedCall, CallIntake } from './call-intake.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principals.js';
import { handlerMetadata, principalOf } from './metadata.js';

export { MAX_SESSION_CALLS };

/**
 * One call on a session, as the dispatcher's sink: its frames go to the session's
 * batcher, and its stream credit comes from the client, so a consumer that reads slowly
 * holds back only its own call's producer.
 */
class SessionCallSink implements CallSink {
  private drainListener: (() => void) | undefined;
  done = false;

  constructor(
    private readonly session: ClientSession,
    readonly callId: number,
    private credit: number,
  ) {}

  result(payload: Buffer, nodeId: string, cached: boolean): void {
    this.finish({ result: { callId: this.callId, result: payload, nodeId, cached } });
  }

  chunk(payload: Buffer): boolean {
    if (this.done) return true;
    this.session.push({ chunk: { callId: this.callId, chunk: payload } });
    this.credit--;
    return this.credit > 0 && this.session.writable;
  }

  resultPart(data: Buffer): boolean {
    if (this.done) return true;
    this.session.push({ resultPart: { callId: this.callId, data } });
    this.credit--;
    return this.credit > 0 && this.session.writable;
  }

  progress(fraction: number, message: string): void {
    if (!this.done) this.session.push({ progress: { callId: this.callId, fraction, message } });
  }

  end(): void {
    this.finish({ end: { callId: this.callId } });
  }

  error(err: EasyRemoteError): void {
    this.finish({ error: { callId: this.callId, error: err.toDetail() } });
  }

  /** The client cancelled the call: it expects nothing more for it, and its id is free again. */
  cancelled(): void {
    if (this.done) return;
    this.done = true;
    this.session.forget(this.callId);
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
    this.maybeDrain();
  }

  /** The client consumed `chunks`: that many more may come. */
  grant(chunks: number): void {
    this.credit += chunks;
    this.maybeDrain();
  }

  /** The session's stream took its buffer down: a producer held back only by it may go on. */
  maybeDrain(): void {
    if (this.drainListener === undefined || this.credit <= 0 || !this.session.writable) return;
    const listener = this.drainListener;
    this.drainListener = undefined;
    listener();
  }

  private finish(frame: ServerFrame): void {
    if (this.done) return;
    this.done = true;
    this.session.push(frame);
    this.session.forget(this.callId);
  }
}

interface SessionEntry {
  sink: SessionCallSink;
  argsRelay: ArgsRelay | undefined;
  admitted: AdmittedCall;
}

/** One open Session stream and its calls in flight. */
class ClientSession extends SessionServer<SessionEntry> {
  private readonly peer: string;
  /** Authenticated once, on the session's headers: every call on it is this principal's. */
  private readonly caller: Principal;

  constructor(
    stream: SessionStream,
    private readonly intake: CallIntake,
    private readonly clock: Clock,
    private readonly onClosed: (session: ClientSession) => void,
    maxPayloadBytes: number,
    deferFlush: ((flush: () => void) => void) | undefined,
    auth: Authenticator,
  ) {
    super(stream, maxPayloadBytes, deferFlush);
    this.peer = stream.getPeer();
    this.caller = principalOf(stream.metadata, auth);
  }

  protected drained(): void {
    for (const { sink } of this.calls.values()) sink.maybeDrain();
  }

  protected onCredit(callId: number, chunks: number): void {
    this.calls.get(callId)?.sink.grant(chunks);
  }

  protected abandon(entry: SessionEntry): void {
    entry.admitted.cancel();
  }

  protected closedDown(): void {
    this.onClosed(this);
  }

  protected onCall(call: SessionCall): void {
    if (this.calls.has(call.callId)) {
      // The id names a call in flight: answering under it would confuse that call.
      this.reject(new InvalidArgument(`call id ${call.callId} is already in flight on this session`));
      return;
    }
    const sink = new SessionCallSink(this, call.callId, call.initialCredit > 0 ? call.initialCredit : DEFAULT_STREAM_CREDIT);
    if (this.calls.size >= MAX_SESSION_CALLS) {
      sink.error(new Overloaded(`this session has ${MAX_SESSION_CALLS} calls in flight`, { limit: { name: 'max_session_calls', limit: MAX_SESSION_CALLS, actual: this.calls.size + 1 }, retryAfterMs: 100 }));
      return;
    }
    // Arguments in parts are relayed to the node as they come; credit for more goes back to the client as they leave.
    const argsRelay = call.argsSize > call.args.length ? new ArgsRelay(call.argsSize, call.args.length, (parts) => this.push({ argsCredit: { callId: call.callId, parts } })) : undefined;
    const entry = { sink, argsRelay, admitted: { cancel: () => undefined } as AdmittedCall };
    this.calls.set(call.callId, entry);
    const now = this.clock.now();
    entry.admitted = this.intake.admit(
      {
        function: call.function,
        args: call.args,
        options: call.options,
        metadata: handlerMetadata(call.metadata),
        callerDeadlineMs: call.timeoutMs > 0 ? this.clock.epochMs() + call.timeoutMs : Infinity,
        graceHeader: undefined,
        // No per-call HTTP/2 stream for the client to reset: the gateway ends calls exactly at their deadline.
        exactDeadline: true,
        streaming: call.stream,
        wantProgress: call.wantProgress,
        client: this.peer,
        caller: this.caller,
        arrivedAt: now,
        argsRelay,
        assumeIdempotent: call.assumeIdempotent,
        onFunction: this.tellFunction,
      },
      sink,
    );
  }

  /**
   * The client cancelled a call: the node is told, and nothing more is sent for it (a
   * reply produced in the same turn, such as its deadline, may still go out). The call
   * leaves the session, so it no longer counts as in flight.
   */
  protected onCancel(callId: number): void {
    const entry = this.calls.get(callId);
    if (entry === undefined) return;
    entry.admitted.cancel();
    entry.sink.cancelled();
  }

  protected onArgsPart(callId: number, data: Buffer): void {
    const entry = this.calls.get(callId);
    // A part for a call already over (refused, failed, cancelled) is dropped.
    if (entry?.argsRelay === undefined) return;
    if (!entry.argsRelay.push(data)) {
      entry.admitted.cancel();
      entry.sink.error(new InvalidArgument(`call ${callId} sent more argument bytes than the ${entry.argsRelay.total} it announced`));
    }
  }
}

/** Every open session, so that a stopping gateway can tell each one. */
export class SessionService {
  private readonly sessions = new Set<ClientSession>();
  /** Set once the gateway takes no more calls: sessions opened after it are told at once. */
  private goneAway: string | undefined;

  constructor(
    private readonly intake: CallIntake,
    private readonly clock: Clock,
    private readonly auth: Authenticator,
    /** The gateway's payload limit, told to every client in the session's headers. */
    private readonly maxPayloadBytes: number,
    private readonly deferFlush?: (flush: () => void) => void,
  ) {}

  handler(): (stream: SessionStream) => void {
    return (stream) => {
      const session = new ClientSession(stream, this.intake, this.clock, (s) => this.sessions.delete(s), this.maxPayloadBytes, this.deferFlush, this.auth);
      this.sessions.add(session);
      if (this.goneAway !== undefined) session.goAway(this.goneAway);
    };
  }

  /** Every session, and every one opened from now on, takes no more calls, and its client is told so. */
  goAway(reason: string): void {
    this.goneAway = reason;
    for (const s of this.sessions) s.goAway(reason);
  }

  /** Ends every session's stream. */
  close(): void {
    for (const s of [...this.sessions]) s.end();
  }
}
