// The stream half of serving Gateway.Session (proto/session.md), shared by the gateway and
// a node serving calls directly: frames in (an undecodable one refused, batches unbatched),
// frames out through one FrameBatcher, the calls in flight by id, goaway, and the end of
// the stream (half-closed by the client: ended once its calls are answered; gone: its
// calls cancelled). What a call is, and how it is started, cancelled, credited and fed
// argument parts, is the server's own.
import * as grpc from '@grpc/grpc-js';
import { MAX_PAYLOAD_HEADER_KEY } from '../constants.js';
import { FrameBatcher, unbatch } from '../frame-batcher.js';
import type { ClientFrame, ServerFrame, SessionCall } from '../generated/easyremote/v1/gateway.js';
import { InvalidArgument, type EasyRemoteError } from '../errors.js';
import { clip, MAX_QUOTED_CHARS } from '../limits.js';
import { sessionFunctionTeller } from './function-idempotency.js';
import { serverFrameBytes, type SessionStream } from './session-definition.js';
import type { Undecodable } from './tolerant-definitions.js';

export abstract class SessionServer<Call> {
  /** The calls in flight, by the client's call id. */
  protected readonly calls = new Map<number, Call>();
  protected closed = false;
  private halfClosed = false;
  /** Why the session takes no more calls, once it was told to. */
  protected goneAway: string | undefined;
  private readonly batcher: FrameBatcher<ServerFrame>;
  /** Tells the client whether a function it calls is idempotent (SessionFunction). */
  protected readonly tellFunction = sessionFunctionTeller((frame) => this.push(frame));

  constructor(
    protected readonly stream: SessionStream,
    /** The server's payload limit, told to the client in the headers. */
    maxPayloadBytes: number,
    /** Defers the batcher's flush (FrameBatcherOptions.defer). */
    deferFlush?: (flush: () => void) => void,
  ) {
    // Headers first, before any frame: a client that saw them knows its calls reached a
    // running session, and learns the payload limit that sizes its argument parts.
    const headers = new grpc.Metadata();
    headers.set(MAX_PAYLOAD_HEADER_KEY, String(maxPayloadBytes));
    stream.sendMetadata(headers);
    this.batcher = new FrameBatcher<ServerFrame>({ write: (f) => stream.write(f), batch: (frames) => ({ batch: { frames } }), sizeOf: serverFrameBytes, defer: deferFlush });
    stream.on('data', (frame: ClientFrame | Undecodable) => {
      if ('undecodable' in frame) {
        this.reject(new InvalidArgument(`a frame could not be decoded: ${clip(frame.undecodable, MAX_QUOTED_CHARS)}`));
        return;
      }
      unbatch(frame, (f) => this.onFrame(f));
    });
    stream.on('drain', () => this.drained());
    const close = () => this.close();
    stream.on('end', () => this.halfClose());
    stream.on('error', close);
    stream.on('cancelled', close);
    stream.on('close', close);
  }

  /** The stream's buffer has room (a producer may go on). */
  get writable(): boolean {
    return !this.stream.writableNeedDrain;
  }

  push(frame: ServerFrame): void {
    if (!this.closed) this.batcher.push(frame);
  }

  /** The call is over on this session: its id is free, and a half-closed session may end. */
  forget(callId: number): void {
    this.calls.delete(callId);
    this.endIfDone();
  }

  /** Takes no more calls; the client is told to use another session. */
  goAway(reason: string): void {
    if (this.closed || this.goneAway !== undefined) return;
    this.goneAway = reason;
    this.push({ goaway: { reason } });
  }

  /** Ends the stream now, after what is queued; calls still in flight get nothing more. */
  end(): void {
    if (this.closed) return;
    this.batcher.flush();
    this.close();
    this.stream.end();
  }

  protected reject(err: EasyRemoteError): void {
    this.push({ rejected: { error: err.toDetail() } });
  }

  protected abstract onCall(call: SessionCall): void;
  /** The client cancelled a call (SessionCancel). */
  protected abstract onCancel(callId: number): void;
  /** The client granted a streaming call more chunks (SessionCredit). */
  protected abstract onCredit(callId: number, chunks: number): void;
  protected abstract onArgsPart(callId: number, data: Buffer): void;
  /** The stream has room again. */
  protected abstract drained(): void;
  /** The session is gone with this call in flight: stop it, sending nothing. */
  protected abstract abandon(call: Call): void;
  /** Called once, when the session is closed (after its calls were abandoned). */
  protected abstract closedDown(): void;

  private onFrame(frame: ClientFrame): void {
    if (this.closed) return;
    if (frame.call) this.onCall(frame.call);
    else if (frame.cancel) this.onCancel(frame.cancel.callId);
    else if (frame.credit) this.onCredit(frame.credit.callId, frame.credit.chunks);
    else if (frame.argsPart) this.onArgsPart(frame.argsPart.callId, frame.argsPart.data);
  }

  /** The client sends no more calls: the session ends once those in flight are answered. */
  private halfClose(): void {
    this.halfClosed = true;
    this.endIfDone();
  }

  private endIfDone(): void {
    if (!this.halfClosed || this.calls.size > 0 || this.closed) return;
    this.end();
  }

  /** The client went away (or the session ended): its calls are abandoned, nothing more is sent. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.batcher.close();
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) this.abandon(call);
    this.closedDown();
  }
}
