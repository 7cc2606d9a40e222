// Gateway.Session served by the node itself: the frames, ids, credit, argument parts,
// goaway and refusals of proto/session.md, so a client speaks to a node exactly as to a
// gateway. Each session is one DirectLink to the node's CallRunner.
import * as grpc from '@grpc/grpc-js';
import {
  clip,
  DEFAULT_STREAM_CREDIT,
  FrameBatcher,
  GatewayUnavailable,
  handlerMetadata,
  InvalidArgument,
  MAX_QUOTED_CHARS,
  MAX_SESSION_CALLS,
  Overloaded,
  PAYLOAD_PART_CREDIT,
  quote,
  serverFrameBytes,
  sessionFunctionTeller,
  unbatch,
  type ClientFrame,
  type EasyRemoteError,
  type Principal,
  type ServerFrame,
  type SessionCall,
  type SessionStream,
  type Undecodable,
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

export class DirectSession {
  private readonly calls = new Map<number, OpenCall>();
  private readonly link: DirectLink;
  private readonly batcher: FrameBatcher<ServerFrame>;
  private closed = false;
  private halfClosed = false;
  private goneAway: string | undefined;
  /** Tells the client whether a function it calls is idempotent (SessionFunction). */
  private readonly tellFunction = sessionFunctionTeller((frame) => this.push(frame));

  constructor(
    private readonly stream: SessionStream,
    private readonly intake: DirectIntake,
    /** Authenticated once, on the session's headers. */
    private readonly caller: Principal,
    maxPayloadBytes: number,
    private readonly onClosed: (session: DirectSession) => void,
  ) {
    this.link = new DirectLink(maxPayloadBytes, () => stream.writableNeedDrain);
    this.batcher = new FrameBatcher<ServerFrame>({ write: (f) => stream.write(f), batch: (frames) => ({ batch: { frames } }), sizeOf: serverFrameBytes });
    // Headers first: a client that saw them knows its calls reached a running session.
    stream.sendMetadata(new grpc.Metadata());
    stream.on('data', (frame: ClientFrame | Undecodable) => {
      if ('undecodable' in frame) {
        this.reject(new InvalidArgument(`a frame could not be decoded: ${clip(frame.undecodable, MAX_QUOTED_CHARS)}`));
        return;
      }
      unbatch(frame, (f) => this.onFrame(f));
    });
    stream.on('drain', () => this.link.drained());
    const close = () => this.close();
    stream.on('end', () => this.halfClose());
    stream.on('error', close);
    stream.on('cancelled', close);
    stream.on('close', close);
  }

  /** Takes no more calls; the client is told to use another session (or the gateway). */
  goAway(reason: string): void {
    if (this.closed || this.goneAway !== undefined) return;
    this.goneAway = reason;
    this.push({ goaway: { reason } });
  }

  /** Ends the stream after what is queued (the node stops: its calls were answered). */
  end(): void {
    if (this.closed) return;
    this.batcher.flush();
    this.close();
    this.stream.end();
  }

  private push(frame: ServerFrame): void {
    if (!this.closed) this.batcher.push(frame);
  }

  private reject(err: EasyRemoteError): void {
    this.push({ rejected: { error: err.toDetail() } });
  }

  private onFrame(frame: ClientFrame): void {
    if (this.closed) return;
    if (frame.call) this.onCall(frame.call);
    else if (frame.cancel) this.onCancel(frame.cancel.callId);
    else if (frame.credit) this.calls.get(frame.credit.callId)?.call?.credit(frame.credit.chunks);
    else if (frame.argsPart) this.onArgsPart(frame.argsPart.callId, frame.argsPart.data);
  }

  private onCall(c: SessionCall): void {
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
    const writable = () => !this.closed && !this.stream.writableNeedDrain;
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
  private onCancel(callId: number): void {
    const open = this.calls.get(callId);
    if (open === undefined) return;
    open.call?.cancel();
    this.forget(callId);
  }

  private onArgsPart(callId: number, data: Buffer): void {
    const open = this.calls.get(callId);
    if (open?.call === undefined) return;
    open.call.argsPart(data);
    // The runner holds the parts until the last one: credit goes back as they arrive.
    if (++open.partsOwed >= ARGS_CREDIT_BATCH && this.calls.get(callId) === open) {
      this.push({ argsCredit: { callId, parts: open.partsOwed } });
      open.partsOwed = 0;
    }
  }

  private forget(callId: number): void {
    this.calls.delete(callId);
    this.endIfDone();
  }

  private halfClose(): void {
    this.halfClosed = true;
    this.endIfDone();
  }

  private endIfDone(): void {
    if (!this.halfClosed || this.calls.size > 0 || this.closed) return;
    this.batcher.flush();
    this.close();
    this.stream.end();
  }

  /** The client went away (or the session ended): its calls are cancelled, nothing more is sent. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.batcher.close();
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const open of calls) open.call?.cancel();
    this.intake.linkClosed(this.link);
    this.onClosed(this);
  }
}
