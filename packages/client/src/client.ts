// The client: one gRPC channel to a gateway; calls by name, through a transparent proxy
// (`client.train_model(data)`), or through a proxy typed by the node's service class.
// Calls travel as frames over a few multiplexed Session streams by default, or as one
// HTTP/2 stream each (`transport: 'unary'`); both give the same results and errors.
import * as grpc from '@grpc/grpc-js';
import {
  AUTH_METADATA_KEY,
  Cancelled,
  DEADLINE_GRACE_METADATA_KEY,
  DEADLINE_GRACE_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_STREAM_CREDIT,
  ENVELOPE_SLACK_BYTES,
  GatewayService,
  KEEPALIVE_OPTIONS,
  channelSecurity,
  decode,
  encodeArgs,
  transportError,
  type ClientTls,
  type CallOptions as WireCallOptions,
  type CallReply,
  type CallRequest,
  type EasyRemoteError,
  type StreamReply,
} from '@easyremote/protocol';
import { mergeOptions, type CallOptions } from './call-options.js';
import { CLIENT_CHANNEL, START_CALL } from './start-call.js';
import { lookAsideRouter, type LookAsideOptions, type LookAsideRouter } from './look-aside-connection.js';
import { LazyRemoteCall, type AnyRemoteCall, type RemoteCall, type RemoteStream } from './remote-call.js';
import { SessionTransport, type CallHandle, type CallListener, type SessionRequest } from './session.js';
import type { Remote } from './typed.js';

const GatewayClient = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');

/** A stream's consumer returns credit to the gateway in batches of this many values. */
const CREDIT_BATCH = DEFAULT_STREAM_CREDIT >> 1;

export interface ClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Options applied to every call (a call's own options win). */
  defaults?: CallOptions;
  /**
   * 'session' (default): calls are multiplexed as frames over a few Session streams, much
   * cheaper per call. 'unary': one HTTP/2 stream per call (Call / CallStream), as any
   * other gRPC client does; also what the client falls back to for a gateway without sessions.
   */
  transport?: 'session' | 'unary';
  /**
   * Connect with TLS and verify the gateway: `{ ca }` (a file path, or PEM text or bytes)
   * for a gateway whose certificate a private CA signed, `serverName` when the address is
   * not a name the certificate carries, or `true` for the system roots. Default: plaintext.
   */
  tls?: ClientTls;
  channelOptions?: grpc.ChannelOptions;
  /**
   * 'proxy' (default): every call goes through the gateway. 'look-aside': the gateway picks
   * a provider (LoadBalancer.GetBackends) and the client calls it directly, falling back to
   * the gateway for providers it cannot reach; see docs/look-aside.md.
   */
  mode?: 'proxy' | 'look-aside';
  /** Look-aside mode's settings; `tls` there is for providers' direct addresses (default: this client's). */
  lookAside?: LookAsideOptions & { tls?: ClientTls };
}

/** Member names of Client itself; a remote function with one of these names needs `client.call`. */
export const RESERVED_NAMES = new Set(['call', 'stream', 'proxy', 'with', 'close', 'waitForReady', 'address', 'then', 'constructor', 'toJSON']);

export type RemoteFunctions = { readonly [name: string]: (...args: any[]) => AnyRemoteCall };

export type DynamicClient = Client & RemoteFunctions;

type GrpcGatewayClient = grpc.Client & {
  call(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReply) => void): grpc.ClientUnaryCall;
  callStream(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<StreamReply>;
};

/** What a Client and the views made with `with()` share: one channel, one set of sessions. */
interface Connection {
  readonly grpc: GrpcGatewayClient;
  readonly sessions: SessionTransport | undefined;
  /** A gRPC failure as the catalogue error it is; a TLS mismatch says so. */
  readonly errorOf: (err: grpc.ServiceError) => EasyRemoteError;
  /** Set in look-aside mode: where calls go first. */
  readonly lookAside?: LookAsideRouter;
}

export class Client {
  private readonly connection: Connection;
  private readonly defaults: CallOptions | undefined;
  private readonly token: string | undefined;
  private readonly transport: 'session' | 'unary';

  constructor(
    readonly address: string,
    options: ClientOptions = {},
    shared?: Connection,
  ) {
    this.defaults = options.defaults;
    this.token = options.token;
    this.transport = options.transport ?? 'session';
    if (this.transport !== 'session' && this.transport !== 'unary') throw new TypeError(`transport must be 'session' or 'unary', got ${JSON.stringify(this.transport)}`);
    if (options.mode !== undefined && options.mode !== 'proxy' && options.mode !== 'look-aside') throw new TypeError(`mode must be 'proxy' or 'look-aside', got ${JSON.stringify(options.mode)}`);
    this.connection = shared ?? this.connect(options);
    // The transparent proxy: unknown property names become remote functions.
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (typeof prop !== 'string' || prop in target || RESERVED_NAMES.has(prop)) return Reflect.get(target, prop, receiver);
        return (...args: unknown[]) => target.invoke(prop, args, undefined);
      },
    });
  }

  private connect(options: ClientOptions): Connection {
    const security = channelSecurity(options.tls);
    const grpcClient = new GatewayClient(this.address, security.credentials, {
      ...KEEPALIVE_OPTIONS,
      ...security.options,
      // A restarted gateway is found again within about a second, not grpc's default two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      // This client's connection is its own, so a failure to connect reaches its calls with
      // its cause (a TLS mismatch, a refused certificate): a connection shared with another
      // client that was already failing reports none.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      'grpc.max_send_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
      ...options.channelOptions,
    }) as unknown as GrpcGatewayClient;
    const errorOf = (err: grpc.ServiceError) => transportError(err, this.address, security.secure);
    const sessions = this.transport === 'session' ? new SessionTransport(grpcClient, this.address, this.token, (req, listener) => this.perCall(req, listener), errorOf) : undefined;
    const viaGateway = (req: SessionRequest, listener: CallListener) => (sessions !== undefined ? sessions.start(req, listener) : this.perCall(req, listener));
    const lookAside = options.mode === 'look-aside' ? lookAsideRouter(grpcClient, options, viaGateway, errorOf, (address, o) => new Client(address, o)) : undefined;
    return { grpc: grpcClient, sessions, errorOf, lookAside };
  }

  /** Calls an ordinary function by name. `args` is the positional argument list. */
  call<T = unknown>(name: string, args: readonly unknown[] = [], options?: CallOptions): Promise<T> {
    return this.unary<T>(name, args, mergeOptions(this.defaults, options));
  }

  /** Calls a generator function by name and iterates what it yields. */
  stream<T = unknown>(name: string, args: readonly unknown[] = [], options?: CallOptions): AsyncIterable<T> {
    return this.streamed<T>(name, args, mergeOptions(this.defaults, options));
  }

  /** A view of this client whose calls all use these options (same connection). */
  with(options: CallOptions): DynamicClient {
    const view = new Client(this.address, { token: this.token, transport: this.transport, defaults: mergeOptions(this.defaults, options) }, this.connection);
    return view as DynamicClient;
  }

  /** A proxy typed by the node's service class: `client.proxy<Trainer>().train(data)`. */
  proxy<S>(options?: CallOptions): Remote<S> {
    const opts = mergeOptions(this.defaults, options);
    return new Proxy({} as Remote<S>, {
      get: (_target, prop) => {
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        return (...args: unknown[]) => this.invoke(prop, args, opts);
      },
    });
  }

  /** The channel to the gateway (or, for a look-aside router's direct connection, to the provider). */
  get [CLIENT_CHANNEL](): grpc.Channel {
    return this.connection.grpc.getChannel() as grpc.Channel;
  }

  /** A call sent as this client sends it (what a look-aside router uses for a provider's direct address). */
  [START_CALL](request: SessionRequest, listener: CallListener): CallHandle {
    return this.start(request, listener);
  }

  /** Resolves once the channel to the gateway is connected. */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => this.connection.grpc.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.connection.lookAside?.close();
    this.connection.sessions?.close();
    this.connection.grpc.close();
  }

  private invoke(name: string, args: unknown[], options: CallOptions | undefined): AnyRemoteCall {
    const opts = options ?? this.defaults ?? {};
    return new LazyRemoteCall<any>(
      () => this.unary(name, args, opts),
      () => this.streamed(name, args, opts),
    );
  }

  private request(name: string, args: readonly unknown[], o: CallOptions, stream: boolean): SessionRequest {
    // Always sent: this client decodes results with the same codec, so it asks for the
    // full-fidelity profile (Maps, Sets and undefined come back as they were returned).
    const wire: WireCallOptions = {
      strategy: o.strategy ?? '',
      fallbackStrategy: o.fallbackStrategy ?? '',
      affinityKey: o.affinityKey ?? '',
      noCache: o.noCache ?? false,
      complexity: o.complexity ?? 0,
      requirements: o.requirements ?? {},
      preferLocation: o.preferLocation ?? '',
      maxLatencyMs: o.maxLatency ?? 0,
      maxCost: o.maxCost ?? 0,
      fullFidelity: true,
    };
    let deadline = o.deadline === undefined ? Infinity : +o.deadline;
    if (o.timeout !== undefined) deadline = Math.min(deadline, Date.now() + o.timeout);
    return { function: name, args: encodeArgs(args), options: wire, metadata: o.metadata ?? {}, deadline, stream, signal: o.signal, onProgress: o.onProgress };
  }

  /** Sends a call over the client's transport (look-aside: to the provider the gateway picks). */
  private start(request: SessionRequest, listener: CallListener): CallHandle {
    if (this.connection.lookAside !== undefined) return this.connection.lookAside.start(request, listener);
    const sessions = this.connection.sessions;
    return sessions !== undefined ? sessions.start(request, listener) : this.perCall(request, listener);
  }

  private unary<T>(name: string, args: readonly unknown[], o: CallOptions): Promise<T> {
    if (o.onProgress) return this.collect<T>(name, args, o);
    let request: SessionRequest;
    try {
      request = this.request(name, args, o, false);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      this.start(request, {
        payload: (bytes) => {
          try {
            resolve(decode<T>(bytes));
          } catch (e) {
            reject(e);
          }
        },
        end: () => resolve(undefined as T),
        error: reject,
      });
    });
  }

  /** An ordinary function called with stream semantics so progress can flow. */
  private async collect<T>(name: string, args: readonly unknown[], o: CallOptions): Promise<T> {
    let last: T | undefined;
    for await (const value of this.streamed<T>(name, args, o)) last = value;
    return last as T;
  }

  private streamed<T>(name: string, args: readonly unknown[], o: CallOptions): AsyncIterable<T> {
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        const request = self.request(name, args, o, true);
        const values: Buffer[] = [];
        let ended = false;
        let failure: EasyRemoteError | undefined;
        let wake: (() => void) | undefined;
        const notify = () => {
          wake?.();
          wake = undefined;
        };
        const handle = self.start(request, {
          payload: (bytes) => {
            values.push(bytes);
            notify();
          },
          end: () => {
            ended = true;
            notify();
          },
          error: (err) => {
            failure = err;
            notify();
          },
        });
        let consumed = 0;
        try {
          for (;;) {
            if (values.length > 0) {
              const bytes = values.shift()!;
              // Credit goes back as values are taken, so a slow consumer holds the producer back.
              if (++consumed >= CREDIT_BATCH) {
                handle.credit(consumed);
                consumed = 0;
              }
              yield decode<T>(bytes);
              continue;
            }
            if (failure !== undefined) throw failure;
            if (ended) return;
            await new Promise<void>((resolve) => (wake = resolve));
          }
        } finally {
          // Breaking out of the loop early cancels the call, which stops the node's generator.
          if (!ended && failure === undefined) handle.cancel();
        }
      },
    };
  }

  // ---- the per-call methods (Call / CallStream) ------------------------------------

  private grpcArgs(request: SessionRequest): { metadata: grpc.Metadata; callOptions: grpc.CallOptions } {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.token}`);
    for (const [k, v] of Object.entries(request.metadata)) metadata.set(k, v);
    const callOptions: grpc.CallOptions = {};
    if (Number.isFinite(request.deadline)) {
      // The gateway ends the call at the deadline; grpc-js's own timer is only the backstop.
      callOptions.deadline = request.deadline + DEADLINE_GRACE_MS;
      metadata.set(DEADLINE_GRACE_METADATA_KEY, String(DEADLINE_GRACE_MS));
    }
    return { metadata, callOptions };
  }

  /** One call as one HTTP/2 stream: Call for one result, CallStream for chunks and progress. */
  private perCall(request: SessionRequest, listener: CallListener): CallHandle {
    const signal = request.signal;
    const noop: CallHandle = { credit: () => undefined, cancel: () => undefined };
    if (signal?.aborted) {
      listener.error(new Cancelled(`call to ${request.function} aborted before it started`, { cause: signal.reason }));
      return noop;
    }
    const req: CallRequest = { function: request.function, args: request.args, options: request.options };
    const { metadata, callOptions } = this.grpcArgs(request);
    const failed = (err: grpc.ServiceError) => listener.error(this.connection.errorOf(err));
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
      const call = this.connection.grpc.call(req, metadata, callOptions, (err, reply) => once(() => (err ? failed(err) : listener.payload(reply!.result))));
      cancel = () => call.cancel();
    } else {
      const call = this.connection.grpc.callStream(req, metadata, callOptions);
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
}

/** Connects to a gateway; the result calls remote functions as methods: `await client.train_model(data)`. */
export function connect(address: string, options: ClientOptions = {}): DynamicClient {
  return new Client(address, options) as DynamicClient;
}

export type { RemoteCall, RemoteStream };
