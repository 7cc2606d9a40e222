// Gateway.Session served by the node itself: the frames, ids, credit, argument parts,
// goaway and refusals of proto/session.md, so a client speaks to a node exactly as to a
// gateway. Each session is one DirectLink to the node's CallRunner.
import {
  DEFAULT_STREAM_CREDIT,
  GatewayUnavailable,
  handlerMetadata,
  InvalidArgument,
  MAX_SESSION_CALLS,
  Overloaded,
  PAYLOAD_PART_CREDIT,
  quote,
  SessionServer,
  type Principal,
  type ServerFrame,
  type SessionCall,
  type SessionStream,
} from '@easyremote/protocol';
import type { DirectCall, DirectIntake } from './direct-intake.js';
import { DirectLink } from './direct-link.js';

/** Argument parts granted back to the client at a time, as the gateway does. */
const ARGS_CREDIT_BATCH = PAYLOAD_PART_CREDIT >> 1;

interface OpenCall {
  call: DirectCall | undefined;
  /** Argument parts received since the last ArgsCredit. */
  partsOwed: number;
}

export class DirectSession extends SessionServer<OpenCall> {
  private readonly link: DirectLink;

  constructor(
    stream: SessionStream,
    private readonly intake: DirectIntake,
    /** Authenticated once, on the session's headers. */
    private readonly caller: Principal,
    maxPayloadBytes: number,
    private readonly onClosed: (session: DirectSession) => void,
  ) {
    super(stream, maxPayloadBytes);
    this.link = new DirectLink(maxPayloadBytes, () => stream.writableNeedDrain);
  }

  protected drained(): void {
    this.link.drained();
  }

  protected onCredit(callId: number, chunks: number): void {
    this.calls.get(callId)?.call?.credit(chunks);
  }

  protected abandon(open: OpenCall): void {
    open.call?.cancel();
  }

  protected closedDown(): void {
    this.intake.linkClosed(this.link);
    this.onClosed(this);
  }

  protected onCall(c: SessionCall): void {
    const callId = c.callId;
    if (this.goneAway !== undefined) {
      this.push({ error: { callId, error: new GatewayUnavailable(`this node took no more calls on this session (${this.goneAway}); ${quote(c.function)} was not run`).toDetail() } });
      return;
    }
    if (this.calls.has(callId)) {
      this.reject(new InvalidArgument(`call id ${callId} is already in flight on this session`));
      return;
    }
    if (this.calls.size >= MAX_SESSION_CALLS) {
      const err = new Overloaded(`this session has ${MAX_SESSION_CALLS} calls in flight`, { limit: { name: 'max_session_calls', limit: MAX_SESSION_CALLS, actual: this.calls.size + 1 }, retryAfterMs: 100 });
      this.push({ error: { callId, error: err.toDetail() } });
      return;
    }
    const open: OpenCall = { call: undefined, partsOwed: 0 };
    this.calls.set(callId, open);
    const finish = (frame: ServerFrame) => {
      if (this.calls.get(callId) !== open) return;
      this.push(frame);
      this.forget(callId);
    };
    const writable = () => !this.closed && this.writable;
    open.call = this.intake.start(
      this.link,
      {
        function: c.function,
        args: c.args,
        argsSize: Number(c.argsSize),
        options: c.options,
        metadata: handlerMetadata(c.metadata),
        callerDeadlineMs: c.timeoutMs > 0 ? Date.now() + c.timeoutMs : Infinity,
        graceHeader: undefined,
        exactDeadline: true,
        streaming: c.stream,
        wantProgress: c.wantProgress,
        initialCredit: c.initialCredit > 0 ? c.initialCredit : DEFAULT_STREAM_CREDIT,
        caller: this.caller,
        assumeIdempotent: c.assumeIdempotent,
        onFunction: this.tellFunction,
      },
      {
        result: (result) => finish({ result: { callId, result, nodeId: this.intake.nodeId, cached: false } }),
        resultPart: (data) => (this.push({ resultPart: { callId, data } }), writable()),
        chunk: (chunk) => (this.push({ chunk: { callId, chunk } }), writable()),
        end: () => finish({ end: { callId } }),
        error: (error) => finish({ error: { callId, error } }),
        progress: (fraction, message) => this.push({ progress: { callId, fraction, message } }),
      },
    );
  }

  /** The client cancelled a call: the handler is told, nothing more is sent for it, and its id is free. */
  protected onCancel(callId: number): void {
    const open = this.calls.get(callId);
    if (open === undefined) return;
    open.call?.cancel();
    this.forget(callId);
  }

  protected onArgsPart(callId: number, data: Buffer): void {
    const open = this.calls.get(callId);
    if (open?.call === undefined) return;
    open.call.argsPart(data);
    // The runner holds the parts until the last one: credit goes back as they arrive.
    if (++open.partsOwed >= ARGS_CREDIT_BATCH && this.calls.get(callId) === open) {
      this.push({ argsCredit: { callId, parts: open.partsOwed } });
      open.partsOwed = 0;
    }
  }
}
