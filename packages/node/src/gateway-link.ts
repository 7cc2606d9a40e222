// A node's link to one gateway: one NodeLink.Connect stream at a time, reopened with
// backoff when it breaks. It registers the node (again when its functions change),
// heartbeats, answers pings, drains in either direction, and hands invoke, cancel and
// credit frames to the node's calls, which reply through send().
//
// It keeps its own view of the lease. The gateway pings every heartbeat interval, so
// when the link has heard nothing for longer than the lease (a process stopped and
// continued, a loop blocked), the gateway has already declared the node lost and answered
// its callers: the stream is dead even if no error has arrived yet. The link ends it,
// fences its calls and reconnects.
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  AUTH_METADATA_KEY,
  createLogger,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  EasyRemoteError,
  ErrorDetail,
  errorFromDetail,
  explainConnectFailure,
  fromServiceError,
  FrameBatcher,
  unbatch,
  type GatewayFrame,
  type Heartbeat,
  type Invoke,
  type Logger,
  type NodeFrame,
  type NodeTls,
  type Register,
  type Registered,
} from '@easyremote/protocol';
import { Backoff, type BackoffOptions } from './backoff.js';
import { grpcTransport, type LinkTransport, type NodeStream } from './link-transport.js';

/**
 * After close(), how long the stream gets to deliver what was queued (its last results)
 * and be closed by the gateway before the channel is closed regardless.
 */
export const CLOSE_GRACE_MS = 2000;
/** The node's lease view is never shorter than this many of the gateway's ping intervals. */
export const MIN_LEASE_HEARTBEATS = 2;

/** Where a link's calls go: the node's runner. */
export interface LinkCalls {
  invoke(link: GatewayLink, invoke: Invoke): void;
  cancel(link: GatewayLink, attemptId: number, reason: string): void;
  credit(link: GatewayLink, attemptId: number, chunks: number): void;
  /** The next part of an invocation's arguments. */
  argsPart(link: GatewayLink, attemptId: number, data: Buffer): void;
  /** Every call that came on the link's current stream is void. */
  linkLost(link: GatewayLink, reason: string): void;
}

/** What a link needs from the node that owns it. */
export interface GatewayLinkHelper {
  /** The register frame as of now, for this link (the token is the link's own). */
  registration(link: GatewayLink): Omit<Register, 'token'>;
  /** A heartbeat as of now, for this link: telemetry, the node's total load, its gateway links. */
  heartbeat(link: GatewayLink): Heartbeat;
  readonly calls: LinkCalls;
  registered(link: GatewayLink, gatewayId: string): void;
  /** `retrying`: the link reconnects and tries again; otherwise it has closed. */
  refused(link: GatewayLink, err: EasyRemoteError, retrying: boolean): void;
  disconnected(link: GatewayLink, reason: string): void;
  drainRequested(link: GatewayLink): void;
  error(err: Error): void;
}

export interface GatewayLinkOptions {
  /** Gateway address, host:port. */
  address: string;
  /** Sent as a bearer token and in the register frame. */
  token?: string;
  /** Overrides the heartbeat interval the gateway asks for. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Extra grpc-js channel options (ignored when `transport` is given). */
  channelOptions?: grpc.ChannelOptions;
  /** TLS to the gateway, and the node's certificate for gateways that require one (ignored when `transport` is given). */
  tls?: NodeTls;
  transport?: LinkTransport;
  /** Monotonic clock, ms: it must keep running while the process is stopped. */
  now?: () => number;
  /** When queued frames are written (setImmediate by default: one message per turn). */
  deferFlush?: (flush: () => void) => void;
  /** Where the link says what happens to it (connecting, registered, refused, lost, reconnecting); silent by default. */
  logger?: Logger;
}

/** Refusals a link retries: a taken node id (maybe its own stale session) and the gateway asking it to slow down. */
const RETRIED_REFUSALS = new Set(['REGISTRATION_REFUSED', 'RATE_LIMITED', 'OVERLOADED']);
/** At most this many function names in the `registered` log line. */
const LOGGED_FUNCTION_NAMES = 20;

type LinkState = 'new' | 'connecting' | 'registered' | 'draining' | 'closed';

export class GatewayLink {
  readonly address: string;
  private readonly transport: LinkTransport;
  private readonly backoff: Backoff;
  private readonly now: () => number;
  private readonly logger: Logger;
  private state: LinkState = 'new';
  /** The function names last sent in a register frame. */
  private declared: string[] = [];
  private stream: NodeStream | undefined;
  /** Settles once the stream close() ended is closed, or its grace ran out. */
  private closing: Promise<void> = Promise.resolve();
  private batcher: FrameBatcher<NodeFrame> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private payloadLimit = DEFAULT_MAX_PAYLOAD_BYTES;
  /** 0 until the gateway states it in `registered`. */
  private leaseMs = 0;
  private lastHeardAt = 0;
  private writableWaiters: Array<() => void> = [];
  private acceptedBy = '';
  /** The gateway said it is stopping (GatewayGoaway): the end of this stream is expected. */
  private goingAway = false;

  constructor(
    private readonly options: GatewayLinkOptions,
    private readonly helper: GatewayLinkHelper,
  ) {
    this.address = options.address;
    this.transport = options.transport ?? grpcTransport(options.address, options.channelOptions, options.tls);
    this.backoff = new Backoff(options.backoff);
    this.now = options.now ?? (() => performance.now());
    this.logger = (options.logger ?? createLogger('node', { level: 'silent' })).child({ gateway: options.address });
  }

  /** Opens the first stream; the link reconnects by itself afterwards. */
  start(): void {
    if (this.state !== 'new') return;
    this.logger.info('connecting');
    this.connect();
  }

  get isRegistered(): boolean {
    return this.state === 'registered';
  }

  /** Closed for good: by its owner, or after a refusal no retry can fix. */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** The id of the gateway that last accepted this link's registration ('' before one did). */
  get gatewayId(): string {
    return this.acceptedBy;
  }

  /** Whether a stream is open (registered or not). */
  get isConnected(): boolean {
    return this.stream !== undefined;
  }

  get maxPayloadBytes(): number {
    return this.payloadLimit;
  }

  /**
   * Queues a frame on the current stream (dropped when there is none); frames queued in one
   * turn go as one message. False when the stream's buffer is full (wait for writable()).
   */
  send(frame: NodeFrame): boolean {
    const stream = this.stream;
    if (stream === undefined || this.batcher === undefined) return true;
    this.batcher.push(frame);
    return !stream.writableNeedDrain;
  }

  /**
   * Whether the current stream can still carry replies: open, and heard from within the
   * lease. Finding the lease over ends the stream (its calls are fenced) and reconnects.
   */
  isLive(): boolean {
    const stream = this.stream;
    return stream !== undefined && !this.leaseOver(stream);
  }

  writable(): Promise<void> {
    if (this.stream === undefined) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Sends the node's function list again (it changed). */
  reregister(): void {
    if (this.state === 'connecting' || this.state === 'registered') this.sendRegister();
  }

  /** Tells the gateway this node takes no new calls; the link does not reconnect after this stream. */
  drain(): void {
    if (this.state === 'new' || this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    this.send({ drain: {} });
  }

  /** Ends the stream and closes the channel; the link's calls are fenced. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    const stream = this.stream;
    this.stream = undefined;
    this.releaseWriters();
    if (stream === undefined) {
      this.transport.close();
      return;
    }
    this.helper.calls.linkLost(this, 'link closed');
    this.batcher?.flush();
    this.batcher?.close();
    this.batcher = undefined;
    stream.end();
    // The gateway closes the stream once it has read everything before the end: only then
    // have the last results surely left this process. Cancelled at the end in any case: a
    // stream still waiting for a connection would otherwise go on dialling the gateway
    // after the link (and its node) gave up.
    this.closing = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stream.cancel();
        this.transport.close();
        resolve();
      };
      const timer = setTimeout(done, CLOSE_GRACE_MS);
      timer.unref();
      stream.on('close', done);
      stream.on('error', done);
    });
  }

  /** Resolves once what close() ended is over: the stream closed, or CLOSE_GRACE_MS passed. */
  closed(): Promise<void> {
    return this.closing;
  }

  // ---- the stream ----------------------------------------------------------------------

  private connect(): void {
    this.state = 'connecting';
    this.leaseMs = 0;
    const metadata = new grpc.Metadata();
    if (this.options.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.options.token}`);
    const stream = this.transport.open(metadata);
    this.stream = stream;
    this.batcher?.close();
    this.batcher = new FrameBatcher<NodeFrame>({ write: (f) => stream.write(f), batch: (frames) => ({ batch: { frames } }), sizeOf: nodeFrameBytes, defer: this.options.deferFlush });
    this.lastHeardAt = this.now();
    stream.on('data', (message: GatewayFrame) => {
      unbatch(message, (frame) => {
        try {
          this.onFrame(stream, frame);
        } catch (err) {
          this.helper.error(err as Error);
        }
      });
    });
    stream.on('drain', () => {
      if (stream === this.stream) this.releaseWriters();
    });
    stream.on('error', (err: Error) => {
      // The gateway refused the stream itself (a token checked before any frame is read, or
      // asked to come back later): the same answer a refused registration gets.
      const refusal = refusalOf(err);
      if (refusal !== undefined && stream === this.stream) this.onRegistered(stream, { accepted: false, refusal: refusal.toDetail(), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: '' });
      // A TLS mismatch or a refused certificate is retried like any failure to connect, but named as what it is.
      else this.lose(stream, `stream error: ${explainConnectFailure(err.message, this.address, this.transport.secure === true) ?? err.message}`);
    });
    stream.on('end', () => this.lose(stream, 'gateway closed the stream'));
    stream.on('close', () => this.lose(stream, 'stream closed'));
    this.sendRegister();
  }

  private sendRegister(): void {
    const registration = this.helper.registration(this);
    this.declared = registration.functions.map((f) => f.name);
    this.send({ register: { ...registration, token: this.options.token ?? '' } });
  }

  /**
   * Ends a stream that broke or outlived its lease: its calls are fenced, then a reconnect,
   * no sooner than `retryAfterMs` when the gateway said when to come back.
   */
  private lose(stream: NodeStream, reason: string, retryAfterMs = 0): void {
    if (stream !== this.stream) return;
    const wasRegistered = this.state === 'registered';
    this.stream = undefined;
    this.batcher?.close();
    this.batcher = undefined;
    this.leaseMs = 0;
    clearInterval(this.heartbeatTimer);
    stream.cancel();
    this.releaseWriters();
    this.helper.calls.linkLost(this, reason);
    this.helper.disconnected(this, reason);
    // The owner may have closed or drained the link meanwhile.
    if (this.state !== 'connecting' && this.state !== 'registered') return;
    // A gateway that said it was stopping is likely restarting: look for it again from the shortest delay.
    const expected = this.goingAway;
    this.goingAway = false;
    if (expected) this.backoff.reset();
    if (wasRegistered) this.logger.warn({ reason }, 'disconnected');
    this.state = 'connecting';
    // The backoff's jitter on top of a retry-after: nodes told the same time do not all come back at once.
    const delayMs = retryAfterMs + this.backoff.next();
    this.logger.info({ attempt: this.backoff.attempts, delayMs: Math.round(delayMs), reason: wasRegistered ? undefined : reason }, 'reconnecting');
    this.reconnectTimer = setTimeout(() => {
      if (this.state === 'connecting' && this.stream === undefined) this.connect();
    }, delayMs);
  }

  /** True (and the stream ended) when the gateway has been silent for longer than the lease. */
  private leaseOver(stream: NodeStream): boolean {
    if (this.leaseMs <= 0) return false;
    const silentMs = this.now() - this.lastHeardAt;
    if (silentMs <= this.leaseMs) return false;
    this.lose(stream, `heard nothing from the gateway for ${Math.round(silentMs)} ms (lease ${this.leaseMs} ms)`);
    return true;
  }

  private releaseWriters(): void {
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const resolve of waiters) resolve();
  }

  // ---- frames from the gateway ---------------------------------------------------------

  private onFrame(stream: NodeStream, frame: GatewayFrame): void {
    if (stream !== this.stream) return;
    // Frames held up while this process was stopped arrive all at once: a gap longer than
    // the lease before them means the gateway gave up on this stream in between.
    if (this.leaseOver(stream)) return;
    this.lastHeardAt = this.now();
    const calls = this.helper.calls;
    if (frame.invoke) calls.invoke(this, frame.invoke);
    else if (frame.cancel) calls.cancel(this, frame.cancel.attemptId, frame.cancel.reason);
    else if (frame.credit) calls.credit(this, frame.credit.attemptId, frame.credit.chunks);
    else if (frame.argsPart) calls.argsPart(this, frame.argsPart.attemptId, frame.argsPart.data);
    else if (frame.ping) this.send({ pong: { nonce: frame.ping.nonce } });
    else if (frame.registered) this.onRegistered(stream, frame.registered);
    else if (frame.drain) this.helper.drainRequested(this);
    else if (frame.goaway) {
      this.goingAway = true;
      this.logger.info({ reason: frame.goaway.reason }, 'the gateway is stopping');
    }
    else if (frame.rejected) this.helper.error(errorFromDetail(frame.rejected.error ?? ErrorDetail.fromPartial({ code: 'INVALID_ARGUMENT', message: 'the gateway rejected a frame' })));
  }

  private onRegistered(stream: NodeStream, reg: Registered): void {
    if (!reg.accepted) {
      const err = reg.refusal ? errorFromDetail(reg.refusal) : new EasyRemoteError('REGISTRATION_REFUSED', 'registration refused');
      // A duplicate id may be a stale session of ours that the gateway has not expired yet:
      // retry (the owner decides how long). Anything else (bad token, bad name) will not fix itself.
      const retrying = RETRIED_REFUSALS.has(err.code);
      const fields = { code: err.code, reason: err.message, retryAfterMs: err.retryAfterMs };
      if (err.code === 'RATE_LIMITED' || err.code === 'OVERLOADED') this.logger.warn(fields, 'rate-limited');
      else if (retrying) this.logger.warn(fields, 'registration refused, retrying');
      else this.logger.error(fields, 'registration refused');
      if (!retrying) this.close();
      this.helper.refused(this, err, retrying);
      if (retrying) this.lose(stream, `registration refused: ${err.message}`, err.retryAfterMs ?? 0);
      return;
    }
    this.payloadLimit = reg.maxPayloadBytes || DEFAULT_MAX_PAYLOAD_BYTES;
    this.acceptedBy = reg.gatewayId;
    // The gateway pings once per its heartbeat interval: a lease shorter than two of those
    // (a gateway configured so) would find silence between ordinary pings.
    this.leaseMs = reg.leaseMs > 0 ? Math.max(reg.leaseMs, MIN_LEASE_HEARTBEATS * reg.heartbeatMs) : 0;
    if (this.state === 'connecting') this.state = 'registered';
    this.backoff.reset();
    clearInterval(this.heartbeatTimer);
    const every = this.options.heartbeatMs ?? (reg.heartbeatMs || DEFAULT_HEARTBEAT_MS);
    this.heartbeatTimer = setInterval(() => this.beat(), every);
    this.heartbeatTimer.unref();
    const names = this.declared;
    const functions = names.length > LOGGED_FUNCTION_NAMES ? [...names.slice(0, LOGGED_FUNCTION_NAMES), `… ${names.length - LOGGED_FUNCTION_NAMES} more`] : names;
    this.logger.info({ gatewayId: reg.gatewayId, functions }, 'registered');
    this.helper.registered(this, reg.gatewayId);
  }

  /** A heartbeat now, out of turn (the node's gateway links changed), when the link is registered. */
  beatNow(): void {
    if (this.state === 'registered') this.beat();
  }

  private beat(): void {
    // A timer that fires after the process was stopped finds the lease over here.
    if (!this.isLive()) return;
    this.send({ heartbeat: this.helper.heartbeat(this) });
  }
}

/** Stream statuses that are the gateway's answer to the node rather than a broken connection. */
const STREAM_REFUSALS = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'INVALID_ARGUMENT', 'RATE_LIMITED', 'OVERLOADED']);

/** A stream error that is the gateway's refusal of the stream (a bad token, or come back later). */
function refusalOf(err: Error): EasyRemoteError | undefined {
  if (!('code' in err) || !('metadata' in err)) return undefined;
  const e = fromServiceError(err as grpc.ServiceError);
  return STREAM_REFUSALS.has(e.code) ? e : undefined;
}

/** Payload bytes a frame to the gateway carries (what makes a batch large). */
function nodeFrameBytes(f: NodeFrame): number {
  return f.result?.payload.length ?? f.chunk?.payload.length ?? f.resultPart?.data.length ?? 0;
}
