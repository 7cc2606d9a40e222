// A client's connection to one gateway: its gRPC channel, its sessions (or one HTTP/2
// stream per call), the calls it has outstanding, and whether new calls should go there
// (GatewayHealth). A failure says what is known about the call: not sent
// (GATEWAY_UNAVAILABLE: safe to send elsewhere), or sent and the gateway lost before the
// answer (GATEWAY_LOST: it may or may not have run).
import * as grpc from '@grpc/grpc-js';
import {
  ASSUME_IDEMPOTENT_METADATA_KEY,
  AUTH_METADATA_KEY,
  Cancelled,
  DEADLINE_GRACE_METADATA_KEY,
  DEADLINE_GRACE_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_STREAM_CREDIT,
  ENVELOPE_SLACK_BYTES,
  ERROR_TRAILER,
  GatewayLost,
  GatewayService,
  IDEMPOTENT_HEADER_KEY,
  KEEPALIVE_OPTIONS,
  FLOW_CONTROL_CHANNEL_OPTIONS,
  channelSecurity,
  targetChannelOptions,
  transportError,
  type CallReply,
  type CallRequest,
  type ClientTls,
  type EasyRemoteError,
  type GatewayTarget,
  type StreamReply,
} from '@easyremote/protocol';
import { GatewayHealth } from './gateway-health.js';
import type { IdempotencyKnowledge } from './idempotency.js';
import { SessionTransport, type CallHandle, type CallListener, type SessionRequest } from './session.js';

const GatewayClient = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');

type GrpcGatewayClient = grpc.Client & {
  call(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReply) => void): grpc.ClientUnaryCall;
  callStream(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<StreamReply>;
};

/**
 * grpc-js's words for a call that never left the client: no connection could be had, the
 * name did not resolve, the channel was closed first, or the server refused the stream unread.
 */
const NOT_SENT = /^(No connection established|Name resolution failed|Channel closed before call started|Stream refused by server)/;
/** Statuses grpc-js makes up itself when a connection breaks (no gateway trailer). */
const BROKEN_STATUSES = new Set([grpc.status.UNAVAILABLE, grpc.status.INTERNAL, grpc.status.UNKNOWN]);

export interface ConnectionSettings {
  token: string | undefined;
  transport: 'session' | 'unary';
  tls: ClientTls | undefined;
  channelOptions: grpc.ChannelOptions | undefined;
  knowledge: IdempotencyKnowledge;
  /** Monotonic ms, for the gateway's health. */
  now: () => number;
  random: () => number;
}

export class GatewayConnection {
  readonly address: string;
  readonly health: GatewayHealth;
  /** Calls sent here and not yet answered. */
  outstanding = 0;
  /** A gRPC failure of a call here as the catalogue error it is; a TLS mismatch says so. */
  readonly errorOf: (err: grpc.ServiceError) => EasyRemoteError;
  private readonly grpc: GrpcGatewayClient;
  private readonly sessions: SessionTransport | undefined;
  private closed = false;

  constructor(
    target: GatewayTarget,
    private readonly settings: ConnectionSettings,
  ) {
    this.address = target.address;
    this.health = new GatewayHealth(settings.random);
    const security = channelSecurity(settings.tls);
    const serverName = settings.tls === undefined || settings.tls === true ? undefined : settings.tls.serverName;
    this.grpc = new GatewayClient(this.address, security.credentials, {
      ...KEEPALIVE_OPTIONS,
      ...FLOW_CONTROL_CHANNEL_OPTIONS,
      ...security.options,
      ...targetChannelOptions(target, security.secure, serverName),
      // A restarted gateway is found again within about a second, not grpc's default two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      // This connection is its own, so a failure to connect reaches its calls with its cause
      // (a TLS mismatch, a refused certificate): a connection shared with another client
      // that was already failing reports none.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      'grpc.max_send_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      ...settings.channelOptions,
    }) as unknown as GrpcGatewayClient;
    this.errorOf = (err) => transportError(err, this.address, security.secure);
    const events = {
      established: () => this.health.succeeded(),
      goaway: () => this.markDown(),
      learned: (fn: string, idempotent: boolean) => settings.knowledge.learn(fn, idempotent),
    };
    this.sessions =
      settings.transport === 'session' ? new SessionTransport(this.grpc, this.address, settings.token, (req, listener) => this.perCall(req, listener), this.errorOf, events) : undefined;
    this.watchChannel();
  }

  /** Sends one call here; its outcome goes to `listener`. */
  start(request: SessionRequest, listener: CallListener): CallHandle {
    return this.sessions !== undefined ? this.sessions.start(request, listener) : this.perCall(request, listener);
  }

  /**
   * No new calls here for a while: its connection failed or broke, or it is stopping. The
   * channel is asked to connect, so that its coming back is noticed (READY) without a call.
   */
  markDown(): void {
    this.health.failed(this.settings.now());
    if (!this.closed) this.grpc.getChannel().getConnectivityState(true);
  }

  /** The channel, for other services of the same server (look-aside mode's LoadBalancer). */
  get channel(): grpc.Channel {
    return this.grpc.getChannel() as grpc.Channel;
  }

  /** Resolves once the channel is connected (rejects after `deadline`). */
  waitForReady(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => this.grpc.waitForReady(deadline, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.closed = true;
    this.sessions?.close();
    this.grpc.close();
  }

  /**
   * Follows the channel's connectivity: connected means the gateway is back (grpc-js
   * reconnects on its own backoff, at most a second apart), a failure to connect means it
   * is down. Event-driven: one pending watch, no timer.
   */
  private watchChannel(): void {
    if (this.closed) return;
    const channel = this.grpc.getChannel();
    // While the gateway is down, keep the channel trying (grpc-js's backoff) rather than idle.
    const state = channel.getConnectivityState(this.health.state !== 'up');
    if (state === grpc.connectivityState.READY) this.health.succeeded();
    else if (state === grpc.connectivityState.TRANSIENT_FAILURE && this.health.state === 'up') this.health.failed(this.settings.now());
    if (state === grpc.connectivityState.SHUTDOWN) return;
    channel.watchConnectivityState(state, Infinity, () => this.watchChannel());
  }

  // ---- the per-call methods (Call / CallStream) ------------------------------------

  private grpcArgs(request: SessionRequest): { metadata: grpc.Metadata; callOptions: grpc.CallOptions } {
    const metadata = new grpc.Metadata();
    if (this.settings.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.settings.token}`);
    for (const [k, v] of Object.entries(request.metadata)) metadata.set(k, v);
    if (request.assumeIdempotent) metadata.set(ASSUME_IDEMPOTENT_METADATA_KEY, '1');
    const callOptions: grpc.CallOptions = {};
    if (Number.isFinite(request.deadline)) {
      // The gateway ends the call at the deadline; grpc-js's own timer is only the backstop.
      callOptions.deadline = request.deadline + DEADLINE_GRACE_MS;
      metadata.set(DEADLINE_GRACE_METADATA_KEY, String(DEADLINE_GRACE_MS));
    }
    return { metadata, callOptions };
  }

  /**
   * One call as one HTTP/2 stream: Call for one result, CallStream for chunks and progress.
   * The gateway sends its headers (with `easyremote-idempotent`) once it has taken the call
   * in: a connection that breaks after them leaves the outcome unknown (GATEWAY_LOST); one
   * that breaks before them is unknown too, unless grpc-js says the call never left.
   */
  perCall(request: SessionRequest, listener: CallListener): CallHandle {
    const signal = request.signal;
    const noop: CallHandle = { credit: () => undefined, cancel: () => undefined };
    if (signal?.aborted) {
      listener.error(new Cancelled(`call to ${request.function} aborted before it started`, { cause: signal.reason }));
      return noop;
    }
    const req: CallRequest = { function: request.function, args: request.args.whole(), options: request.options };
    const { metadata, callOptions } = this.grpcArgs(request);
    let taken = false;
    const onHeaders = (headers: grpc.Metadata) => {
      const flag = headers.get(IDEMPOTENT_HEADER_KEY)[0];
      if (flag === undefined) return;
      taken = true;
      this.health.succeeded();
      this.settings.knowledge.learn(request.function, flag === '1');
    };
    const failed = (err: grpc.ServiceError) => listener.error(this.callError(err, taken, request.function));
    let done = false;
    const once = (f: () => void) => {
      if (!done) {
        done = true;
        signal?.removeEventListener('abort', onAbort);
        f();
      }
    };
    let cancel: () => void;
    let credit: (chunks: number) => void = () => undefined;
    if (!request.stream) {
      const call = this.grpc.call(req, metadata, callOptions, (err, reply) => once(() => (err ? failed(err) : listener.payload(reply!.result))));
      call.on('metadata', onHeaders);
      cancel = () => call.cancel();
    } else {
      const call = this.grpc.callStream(req, metadata, callOptions);
      call.on('metadata', onHeaders);
      // Values the consumer has not taken yet: past the stream credit the call stops
      // reading, so HTTP/2 flow control holds the gateway (and the node) back.
      let untaken = 0;
      call.on('data', (msg: StreamReply) => {
        const payload = msg.chunk ?? msg.result;
        if (payload !== undefined) {
          listener.payload(payload);
          if (++untaken >= DEFAULT_STREAM_CREDIT) call.pause();
        } else if (msg.progress !== undefined) request.onProgress?.(msg.progress.fraction, msg.progress.message);
      });
      credit = (chunks) => {
        untaken -= chunks;
        if (untaken < DEFAULT_STREAM_CREDIT) call.resume();
      };
      call.on('error', (err: grpc.ServiceError) => once(() => failed(err)));
      call.on('end', () => once(() => listener.end()));
      cancel = () => call.cancel();
    }
    const onAbort = () => {
      cancel();
      once(() => listener.error(new Cancelled(`call to ${request.function} was aborted`, { cause: signal!.reason })));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return { credit, cancel: () => once(cancel) };
  }

  /** A per-call RPC's failure: the gateway's own error when it sent one, else what the transport says about the call. */
  private callError(err: grpc.ServiceError, taken: boolean, fn: string): EasyRemoteError {
    const fromGateway = err.metadata?.get(ERROR_TRAILER)[0] !== undefined;
    if (!fromGateway && BROKEN_STATUSES.has(err.code) && (taken || !NOT_SENT.test(err.details ?? ''))) {
      return new GatewayLost(`the connection to gateway ${this.address} broke before ${fn} answered (${err.details || err.message}); it may or may not have run`, { cause: err });
    }
    return this.errorOf(err);
  }
}
