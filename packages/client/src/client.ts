// The client: one gRPC channel to a gateway; calls by name, through a transparent proxy
// (`client.train_model(data)`), or through a proxy typed by the node's service class.
import * as grpc from '@grpc/grpc-js';
import {
  Cancelled,
  DEADLINE_GRACE_METADATA_KEY,
  DEADLINE_GRACE_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  ENVELOPE_SLACK_BYTES,
  GatewayService,
  KEEPALIVE_OPTIONS,
  decode,
  encodeArgs,
  fromServiceError,
  type CallOptions as WireCallOptions,
  type CallReply,
  type CallRequest,
  type StreamReply,
} from '@easyremote/protocol';
import { mergeOptions, type CallOptions } from './call-options.js';
import { LazyRemoteCall, type AnyRemoteCall, type RemoteCall, type RemoteStream } from './remote-call.js';
import type { Remote } from './typed.js';

const GatewayClient = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');

export interface ClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Options applied to every call (a call's own options win). */
  defaults?: CallOptions;
  channelOptions?: grpc.ChannelOptions;
}

/** Member names of Client itself; a remote function with one of these names needs `client.call`. */
export const RESERVED_NAMES = new Set(['call', 'stream', 'proxy', 'with', 'close', 'waitForReady', 'address', 'then', 'constructor', 'toJSON']);

export type RemoteFunctions = { readonly [name: string]: (...args: any[]) => AnyRemoteCall };

export type DynamicClient = Client & RemoteFunctions;

type GrpcGatewayClient = grpc.Client & {
  call(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReply) => void): grpc.ClientUnaryCall;
  callStream(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<StreamReply>;
};

export class Client {
  private readonly grpcClient: GrpcGatewayClient;
  private readonly defaults: CallOptions | undefined;
  private readonly token: string | undefined;

  constructor(
    readonly address: string,
    options: ClientOptions = {},
    shared?: GrpcGatewayClient,
  ) {
    this.defaults = options.defaults;
    this.token = options.token;
    this.grpcClient =
      shared ??
      (new GatewayClient(address, grpc.credentials.createInsecure(), {
        ...KEEPALIVE_OPTIONS,
        // A restarted gateway is found again within about a second, not grpc's default two minutes.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
        'grpc.max_send_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
        ...options.channelOptions,
      }) as unknown as GrpcGatewayClient);
    // The transparent proxy: unknown property names become remote functions.
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (typeof prop !== 'string' || prop in target || RESERVED_NAMES.has(prop)) return Reflect.get(target, prop, receiver);
        return (...args: unknown[]) => target.invoke(prop, args, undefined);
      },
    });
  }

  /** Calls an ordinary function by name. `args` is the positional argument list. */
  call<T = unknown>(name: string, args: readonly unknown[] = [], options?: CallOptions): Promise<T> {
    return this.unary<T>(name, args, mergeOptions(this.defaults, options));
  }

  /** Calls a generator function by name and iterates what it yields. */
  stream<T = unknown>(name: string, args: readonly unknown[] = [], options?: CallOptions): AsyncIterable<T> {
    return this.streamed<T>(name, args, mergeOptions(this.defaults, options));
  }

  /** A view of this client whose calls all use these options. */
  with(options: CallOptions): DynamicClient {
    const view = new Client(this.address, { token: this.token, defaults: mergeOptions(this.defaults, options) }, this.grpcClient);
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

  /** Resolves once the channel to the gateway is connected. */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => this.grpcClient.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.grpcClient.close();
  }

  private invoke(name: string, args: unknown[], options: CallOptions | undefined): AnyRemoteCall {
    const opts = options ?? this.defaults ?? {};
    return new LazyRemoteCall<any>(
      () => this.unary(name, args, opts),
      () => this.streamed(name, args, opts),
    );
  }

  private request(name: string, args: readonly unknown[], o: CallOptions): CallRequest {
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
    return { function: name, args: encodeArgs(args), options: wire };
  }

  private grpcArgs(o: CallOptions): { metadata: grpc.Metadata; callOptions: grpc.CallOptions } {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
    if (o.metadata) for (const [k, v] of Object.entries(o.metadata)) metadata.set(k, v);
    const callOptions: grpc.CallOptions = {};
    let deadline = o.deadline === undefined ? Infinity : +o.deadline;
    if (o.timeout !== undefined) deadline = Math.min(deadline, Date.now() + o.timeout);
    if (Number.isFinite(deadline)) {
      // The gateway ends the call at `deadline`; grpc-js's own timer is only the backstop.
      callOptions.deadline = deadline + DEADLINE_GRACE_MS;
      metadata.set(DEADLINE_GRACE_METADATA_KEY, String(DEADLINE_GRACE_MS));
    }
    return { metadata, callOptions };
  }

  private unary<T>(name: string, args: readonly unknown[], o: CallOptions): Promise<T> {
    if (o.onProgress) return this.collect<T>(name, args, o);
    let req: CallRequest;
    try {
      req = this.request(name, args, o);
    } catch (err) {
      return Promise.reject(err);
    }
    const { metadata, callOptions } = this.grpcArgs(o);
    const signal = o.signal;
    if (signal?.aborted) return Promise.reject(new Cancelled(`call to ${name} aborted before it started`, { cause: signal.reason }));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = this.grpcClient.call(req, metadata, callOptions, (err, reply) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) return reject(fromServiceError(err));
        try {
          resolve(decode<T>(reply!.result));
        } catch (e) {
          reject(e);
        }
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** An ordinary function called over the stream RPC so progress can flow. */
  private async collect<T>(name: string, args: readonly unknown[], o: CallOptions): Promise<T> {
    let last: T | undefined;
    for await (const value of this.streamed<T>(name, args, o)) last = value;
    return last as T;
  }

  private streamed<T>(name: string, args: readonly unknown[], o: CallOptions): AsyncIterable<T> {
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        const req = self.request(name, args, o);
        const { metadata, callOptions } = self.grpcArgs(o);
        const signal = o.signal;
        if (signal?.aborted) throw new Cancelled(`call to ${name} aborted before it started`, { cause: signal.reason });
        const call = self.grpcClient.callStream(req, metadata, callOptions);
        const onAbort = () => call.cancel();
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          for await (const msg of call as AsyncIterable<StreamReply>) {
            if (msg.chunk !== undefined) yield decode<T>(msg.chunk);
            else if (msg.result !== undefined) yield decode<T>(msg.result);
            else if (msg.progress !== undefined) o.onProgress?.(msg.progress.fraction, msg.progress.message);
          }
        } catch (err) {
          if (err && typeof err === 'object' && 'code' in err && 'metadata' in err) throw fromServiceError(err as grpc.ServiceError);
          throw err;
        } finally {
          signal?.removeEventListener('abort', onAbort);
          // Breaking out of the loop early cancels the call, which stops the node's generator.
          call.cancel();
        }
      },
    };
  }
}

/** Connects to a gateway; the result calls remote functions as methods: `await client.train_model(data)`. */
export function connect(address: string, options: ClientOptions = {}): DynamicClient {
  return new Client(address, options) as DynamicClient;
}

export type { RemoteCall, RemoteStream };
