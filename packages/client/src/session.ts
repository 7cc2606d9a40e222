// The client's session transport: calls multiplexed as frames over a few long-lived
// Gateway.Session streams, instead of one HTTP/2 stream per call. Frames produced in one
// turn go out as one message. Results, errors, deadlines, cancellation, progress and
// stream credit behave exactly as on the per-call methods.
import * as grpc from '@grpc/grpc-js';
import {
  joinParts,
  AUTH_METADATA_KEY,
  Cancelled,
  DEADLINE_GRACE_MS,
  DEFAULT_STREAM_CREDIT,
  DeadlineExceeded,
  EasyRemoteError,
  FrameBatcher,
  GatewayLost,
  GatewayService,
  MAX_PAYLOAD_HEADER_KEY,
  PAYLOAD_PART_CREDIT,
  partBytesWithin,
  errorFromDetail,
  type SegmentedBytes,
  unbatch,
  type CallOptions as WireCallOptions,
  type ClientFrame,
  type ServerFrame,
} from '@easyremote/protocol';

/** Sessions per gateway at most; another opens only while the least busy one's writes back up. */
export const MAX_SESSIONS = 4;
/** Frames waiting in a session stream's buffer beyond which the next call tries another session. */
const DEEP_WRITE_QUEUE = 64;

/** One call as the session transport sends it. */
export interface SessionRequest {
  readonly function: string;
  /** The encoded arguments (encodeArgsSegments: a large byte array in part-sized chunks). */
  readonly args: SegmentedBytes;
  readonly options: WireCallOptions | undefined;
  readonly metadata: Record<string, string>;
  /** Absolute deadline, epoch ms; Infinity for none. */
  readonly deadline: number;
  /** CallStream semantics (chunks), else Call's (one result). */
  readonly stream: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((fraction: number, message: string) => void) | undefined;
  /**
   * The client will send the call to another gateway if this one is lost before it ends
   * (a gateway said the function is idempotent); a gateway that disagrees refuses it
   * IDEMPOTENCY_MISMATCH without running it.
   */
  readonly assumeIdempotent: boolean;
}

/** What a gateway's sessions tell the rest of the client about that gateway. */
export interface SessionEvents {
  /** A session's headers came: the gateway runs sessions (it is up). */
  established(): void;
  /** The gateway said it takes no more calls on a session (it is stopping). */
  goaway(): void;
  /** The gateway said whether a function is idempotent. */
  learned(fn: string, idempotent: boolean): void;
}

/** What a call receives: payloads (one result, or chunks), then end, or an error. Only the first end or error counts. */
export interface CallListener {
  payload(bytes: Buffer): void;
  end(): void;
  error(err: EasyRemoteError): void;
}

/** A call in flight, for its consumer: stream credit back to the gateway, or an early stop. */
export interface CallHandle {
  credit(chunks: number): void;
  cancel(): void;
}

type SessionDuplex = grpc.ClientDuplexStream<ClientFrame, ServerFrame>;

/** One call on a session, from its first frame to its outcome. */
class SessionCall implements CallHandle {
  private backstop: NodeJS.Timeout | undefined;
  private detach: (() => void) | undefined;
  private over = false;
  /** Set when the call moved to the per-call methods (a gateway without sessions). */
  delegate: CallHandle | undefined;
  private resultParts: Buffer[] | undefined;
  private partsSinceCredit = 0;
  private argsOffset = 0;
  private argsCredit = 0;

  constructor(
    readonly session: Session,
    readonly id: number,
    readonly request: SessionRequest,
    readonly listener: CallListener,
  ) {}

  arm(timeoutMs: number): void {
    if (timeoutMs > 0) {
      // The gateway ends the call at its deadline; this only covers a gateway gone silent.
      this.backstop = setTimeout(() => {
        this.session.send({ cancel: { callId: this.id } });
        this.error(new DeadlineExceeded(`${this.request.function} did not finish before its deadline`));
      }, timeoutMs + DEADLINE_GRACE_MS);
    }
    const signal = this.request.signal;
    if (signal !== undefined) {
      const onAbort = () => {
        this.session.send({ cancel: { callId: this.id } });
        this.error(new Cancelled(`call to ${this.request.function} was aborted`, { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.detach = () => signal.removeEventListener('abort', onAbort);
    }
  }

  credit(chunks: number): void {
    if (this.delegate) this.delegate.credit(chunks);
    else if (!this.over) this.session.send({ credit: { callId: this.id, chunks } });
  }

  cancel(): void {
    if (this.delegate) return this.delegate.cancel();
    if (this.over) return;
    this.session.send({ cancel: { callId: this.id } });
    this.finish();
  }

  /** A stream call's chunk. */
  payload(bytes: Buffer): void {
    if (!this.over) this.listener.payload(bytes);
  }

  /** A part of a large result; the credit it used goes back at once (the parts are only collected). */
  resultPart(data: Buffer): void {
    if (this.over) return;
    (this.resultParts ??= []).push(data);
    if (++this.partsSinceCredit >= PAYLOAD_PART_CREDIT >> 1) {
      this.credit(this.partsSinceCredit);
      this.partsSinceCredit = 0;
    }
  }

  /** The call's one result (the last part, if parts came first): it ends the call, whatever its semantics. */
  result(bytes: Buffer): void {
    if (!this.finish()) return;
    const parts = this.resultParts;
    this.resultParts = undefined;
    this.listener.payload(joinParts(parts, bytes));
    if (this.request.stream) this.listener.end();
  }

  /** Sends argument parts from `offset` while credit lasts; more credit resumes it. */
  sendArgs(offset: number, credit: number): void {
    this.argsOffset = offset;
    this.argsCredit += credit;
    const args = this.request.args;
    while (!this.over && this.argsCredit > 0 && this.argsOffset < args.length) {
      const data = args.slice(this.argsOffset, this.argsOffset + this.session.partBytes);
      this.argsOffset += data.length;
      this.argsCredit--;
      this.session.send({ argsPart: { callId: this.id, data } });
    }
  }

  /** The gateway relayed parts on: that many more may go. */
  moreArgs(parts: number): void {
    this.sendArgs(this.argsOffset, parts);
  }

  end(): void {
    if (this.finish()) this.listener.end();
  }

  error(err: EasyRemoteError): void {
    if (this.finish()) this.listener.error(err);
  }

  /** Marks the call over; false if it already was. */
  finish(): boolean {
    if (this.over) return false;
    this.over = true;
    this.session.calls.delete(this.id);
    clearTimeout(this.backstop);
    this.detach?.();
    return true;
  }
}

/** One Session stream and the calls in flight on it. */
class Session {
  readonly calls = new Map<number, SessionCall>();
  private readonly stream: SessionDuplex;
  private readonly batcher: FrameBatcher<ClientFrame>;
  /** The gateway's handler answered (it sends headers first): calls sent may have run. */
  established = false;
  broken = false;
  /** The gateway said it takes no more calls here: new calls go to another session. */
  draining = false;
  /**
   * The size of the argument parts this session sends: sized to the payload limit the
   * server named in its headers, the size that fits any server's message limit until then.
   */
  partBytes = partBytesWithin(undefined);

  constructor(
    open: () => SessionDuplex,
    private readonly address: string,
    private readonly onBroken: (session: Session, err: EasyRemoteError) => void,
    private readonly serviceError: (err: grpc.ServiceError) => EasyRemoteError,
    private readonly events: SessionEvents,
  ) {
    const stream = (this.stream = open());
    this.batcher = new FrameBatcher<ClientFrame>({ write: (f) => stream.write(f), batch: (frames) => ({ batch: { frames } }), sizeOf: (f) => f.call?.args.length ?? f.argsPart?.data.length ?? 0 });
    stream.on('metadata', (headers: grpc.Metadata) => {
      const limit = headers.get(MAX_PAYLOAD_HEADER_KEY)[0];
      if (typeof limit === 'string' && /^[0-9]{1,15}$/.test(limit)) this.partBytes = partBytesWithin(Number(limit));
      this.establish();
    });
    stream.on('data', (message: ServerFrame) => {
      this.establish();
      unbatch(message, (frame) => this.onFrame(frame));
    });
    stream.on('error', (err: Error) => this.break(this.errorOf(err)));
    stream.on('end', () => this.break(new GatewayLost(`gateway ${this.address} ended the session`)));
  }

  private establish(): void {
    if (this.established) return;
    this.established = true;
    this.events.established();
  }

  get writeQueue(): number {
    return this.stream.writableLength;
  }

  send(frame: ClientFrame): void {
    if (!this.broken) this.batcher.push(frame);
  }

  private errorOf(err: Error): EasyRemoteError {
    if ('code' in err && 'metadata' in err) return this.serviceError(err as grpc.ServiceError);
    return new GatewayLost(`the session with gateway ${this.address} failed: ${err.message}`);
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.result) this.calls.get(frame.result.callId)?.result(frame.result.result);
    else if (frame.chunk) this.calls.get(frame.chunk.callId)?.payload(frame.chunk.chunk);
    else if (frame.resultPart) this.calls.get(frame.resultPart.callId)?.resultPart(frame.resultPart.data);
    else if (frame.argsCredit) this.calls.get(frame.argsCredit.callId)?.moreArgs(frame.argsCredit.parts);
    else if (frame.progress) this.calls.get(frame.progress.callId)?.request.onProgress?.(frame.progress.fraction, frame.progress.message);
    else if (frame.end) this.calls.get(frame.end.callId)?.end();
    else if (frame.error) {
      const detail = frame.error.error;
      this.calls.get(frame.error.callId)?.error(detail ? errorFromDetail(detail) : new GatewayLost('the gateway failed the call without a reason'));
    }
    else if (frame.functionInfo) this.events.learned(frame.functionInfo.function, frame.functionInfo.idempotent);
    else if (frame.goaway) {
      this.draining = true;
      this.events.goaway();
    }
    // A `rejected` frame names a frame this client sent in error; no call waits on it.
  }

  private break(err: EasyRemoteError): void {
    if (this.broken) return;
    this.broken = true;
    this.batcher.close();
    this.onBroken(this, err);
  }

  close(): void {
    this.broken = true;
    this.batcher.close();
    this.stream.cancel();
  }
}

export class SessionTransport {
  private readonly sessions: Session[] = [];
  private nextCallId = 1;
  /** The gateway has no Session method: every call goes over the per-call methods. */
  private unsupported = false;

  constructor(
    private readonly client: grpc.Client,
    private readonly address: string,
    private readonly token: string | undefined,
    /** Sends a call over the per-call methods instead. */
    private readonly fallback: (request: SessionRequest, listener: CallListener) => CallHandle,
    /** A gRPC failure as the catalogue error it is (a TLS mismatch says so). */
    private readonly serviceError: (err: grpc.ServiceError) => EasyRemoteError,
    private readonly events: SessionEvents,
  ) {}

  /** Sends one call; its outcome goes to `listener`. */
  start(request: SessionRequest, listener: CallListener): CallHandle {
    if (this.unsupported) return this.fallback(request, listener);
    const session = this.pick();
    const call = new SessionCall(session, this.nextCallId++, request, listener);
    if (request.signal?.aborted) {
      call.error(new Cancelled(`call to ${request.function} aborted before it started`, { cause: request.signal.reason }));
      return call;
    }
    const timeoutMs = Number.isFinite(request.deadline) ? Math.max(1, request.deadline - Date.now()) : 0;
    session.calls.set(call.id, call);
    call.arm(timeoutMs);
    // Large arguments go in parts, never as one message over the gateway's limit (which
    // would end the whole session): the first with the call, the rest within credit.
    const partBytes = session.partBytes;
    const parted = request.args.length > partBytes;
    session.send({
      call: {
        callId: call.id,
        function: request.function,
        args: parted ? request.args.slice(0, partBytes) : request.args.whole(),
        options: request.options,
        metadata: request.metadata,
        timeoutMs,
        stream: request.stream,
        wantProgress: request.onProgress !== undefined,
        initialCredit: request.stream ? DEFAULT_STREAM_CREDIT : 0,
        argsSize: parted ? request.args.length : 0,
        assumeIdempotent: request.assumeIdempotent,
      },
    });
    if (parted) call.sendArgs(partBytes, PAYLOAD_PART_CREDIT);
    return call;
  }

  close(): void {
    for (const session of this.sessions.splice(0)) session.close();
  }

  /** The least busy session; another opens (up to MAX_SESSIONS) while every one's writes back up. */
  private pick(): Session {
    let best: Session | undefined;
    for (const s of this.sessions) if (!s.draining && (best === undefined || s.writeQueue < best.writeQueue)) best = s;
    const open = this.sessions.filter((s) => !s.draining).length;
    if (best !== undefined && (best.writeQueue < DEEP_WRITE_QUEUE || open >= MAX_SESSIONS)) return best;
    const session = new Session(() => this.open(), this.address, (s, err) => this.broken(s, err), this.serviceError, this.events);
    this.sessions.push(session);
    return session;
  }

  private open(): SessionDuplex {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.token}`);
    const method = GatewayService.session;
    return this.client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata) as SessionDuplex;
  }

  /**
   * A session failed. Before the gateway's handler answered, nothing it carried can have
   * run: its calls get the transport's error (GATEWAY_UNAVAILABLE when the gateway cannot
   * be reached), or go over the per-call methods when the gateway has no Session method.
   * After, the outcome of a call in flight is unknown: GATEWAY_LOST.
   */
  private broken(session: Session, err: EasyRemoteError): void {
    const i = this.sessions.indexOf(session);
    if (i >= 0) this.sessions.splice(i, 1);
    const calls = [...session.calls.values()];
    const cause = err.cause as { code?: number } | undefined;
    if (!session.established && cause?.code === grpc.status.UNIMPLEMENTED) {
      this.unsupported = true;
      for (const call of calls) {
        call.finish();
        call.delegate = this.fallback(call.request, call.listener);
      }
      return;
    }
    for (const call of calls) {
      call.error(
        session.established && err.code !== 'GATEWAY_LOST'
          ? new GatewayLost(`the session with gateway ${this.address} broke before ${call.request.function} answered (${err.message}); it may or may not have run`, { cause: err })
          : err,
      );
    }
  }
}
