// The client: its gateways (one or several, each with its own channel); calls by name,
// through a transparent proxy (`client.train_model(data)`), or through a proxy typed by
// the node's service class. Calls travel as frames over a few multiplexed Session
// streams per gateway by default, or as one HTTP/2 stream each (`transport: 'unary'`);
// both give the same results and errors. With several gateways, calls go to the one with
// the fewest outstanding and move when one fails (failover-call.ts). In look-aside mode a
// gateway picks the provider and the call goes to it directly (look-aside.ts).
import type * as grpc from '@grpc/grpc-js';
import {
  DEFAULT_STREAM_CREDIT,
  decode,
  encodeArgsSegments,
  PAYLOAD_PART_BYTES,
  type AddressLookup,
  type ClientTls,
  type CallOptions as WireCallOptions,
  type EasyRemoteError,
} from '@easyremote/protocol';
import { mergeOptions, type CallOptions } from './call-options.js';
import type { CallRequest } from './failover-call.js';
import { GatewaySet } from './gateway-set.js';
import { lookAsideRouter, type LookAsideOptions, type LookAsideRouter } from './look-aside-connection.js';
import { LazyRemoteCall, type AnyRemoteCall, type RemoteCall, type RemoteStream } from './remote-call.js';
import type { CallHandle, CallListener } from './session.js';
import type { Remote } from './typed.js';

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
  /** How host names are resolved when the client expands them to several gateways (the system resolver by default). */
  lookup?: AddressLookup;
  /**
   * 'proxy' (default): every call goes through a gateway. 'look-aside': a gateway picks a
   * provider (LoadBalancer.GetBackends) and the client calls it directly, falling back to
   * the gateways for providers it cannot reach; see docs/look-aside.md.
   */
  mode?: 'proxy' | 'look-aside';
  /** Look-aside mode's settings; `tls` there is for providers' direct addresses (default: this client's). */
  lookAside?: LookAsideOptions & { tls?: ClientTls };
}

/** Member names of Client itself; a remote function with one of these names needs `client.call`. */
export const RESERVED_NAMES = new Set(['call', 'stream', 'proxy', 'with', 'close', 'waitForReady', 'address', 'then', 'constructor', 'toJSON']);

export type RemoteFunctions = { readonly [name: string]: (...args: any[]) => AnyRemoteCall };

export type DynamicClient = Client & RemoteFunctions;

/** What a Client and the views made with `with()` share: the gateways and, in look-aside mode, the router. */
interface Connection {
  readonly gateways: GatewaySet;
  /** Set in look-aside mode: where calls go first. */
  readonly lookAside: LookAsideRouter | undefined;
}

export class Client {
  /** The gateway address as given, or the addresses joined with commas. */
  readonly address: string;
  private readonly connection: Connection;
  private readonly defaults: CallOptions | undefined;
  private readonly token: string | undefined;
  private readonly transport: 'session' | 'unary';

  /**
   * `address`: one gateway (host:port), or several: calls are spread over them (fewest
   * outstanding first) and move to another when one fails. A name that resolves to several
   * addresses of one family stands for each of them. docs/several-gateways.md.
   */
  constructor(
    address: string | readonly string[],
    options: ClientOptions = {},
    shared?: Connection,
  ) {
    const addresses = typeof address === 'string' ? [address] : [...address];
    if (addresses.length === 0 || addresses.some((a) => typeof a !== 'string' || a === '')) throw new TypeError(`gateway addresses are host:port strings, got ${JSON.stringify(address)}`);
    this.address = addresses.join(',');
    this.defaults = options.defaults;
    this.token = options.token;
    this.transport = options.transport ?? 'session';
    if (this.transport !== 'session' && this.transport !== 'unary') throw new TypeError(`transport must be 'session' or 'unary', got ${JSON.stringify(this.transport)}`);
    if (options.mode !== undefined && options.mode !== 'proxy' && options.mode !== 'look-aside') throw new TypeError(`mode must be 'proxy' or 'look-aside', got ${JSON.stringify(options.mode)}`);
    this.connection = shared ?? this.connect(addresses, options);
    // The transparent proxy: unknown property names become remote functions.
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (typeof prop !== 'string' || prop in target || RESERVED_NAMES.has(prop)) return Reflect.get(target, prop, receiver);
        return (...args: unknown[]) => target.invoke(prop, args, undefined);
      },
    });
  }

  private connect(addresses: readonly string[], options: ClientOptions): Connection {
    const gateways = new GatewaySet([...new Set(addresses)], { token: this.token, transport: this.transport, tls: options.tls, channelOptions: options.channelOptions, lookup: options.lookup });
    const lookAside = options.mode === 'look-aside' ? lookAsideRouter(gateways, { ...options, transport: this.transport }) : undefined;
    return { gateways, lookAside };
  }

  /** The gateway addresses the client dials (a name that stands for several appears as each, once resolved). */
  get addresses(): string[] {
    return this.connection.gateways.addresses;
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

  /** Resolves once the channel to a gateway is connected (any, when there are several). */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return this.connection.gateways.waitForReady(timeoutMs);
  }

  close(): void {
    this.connection.lookAside?.close();
    this.connection.gateways.close();
  }

  private invoke(name: string, args: unknown[], options: CallOptions | undefined): AnyRemoteCall {
    const opts = options ?? this.defaults ?? {};
    return new LazyRemoteCall<any>(
      () => this.unary(name, args, opts),
      () => this.streamed(name, args, opts),
    );
  }

  private request(name: string, args: readonly unknown[], o: CallOptions, stream: boolean): CallRequest {
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
    return { function: name, args: encodeArgsSegments(args, PAYLOAD_PART_BYTES), options: wire, metadata: o.metadata ?? {}, deadline, stream, signal: o.signal, onProgress: o.onProgress };
  }

  /** Sends a call over the client's gateways (look-aside: to the provider a gateway picks). */
  private start(request: CallRequest, listener: CallListener): CallHandle {
    const { gateways, lookAside } = this.connection;
    return lookAside !== undefined ? lookAside.start(request, listener) : gateways.start(request, listener);
  }

  private unary<T>(name: string, args: readonly unknown[], o: CallOptions): Promise<T> {
    if (o.onProgress) return this.collect<T>(name, args, o);
    let request: CallRequest;
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
}

/**
 * Connects to a gateway, or to several (`connect(['gw-a:50051', 'gw-b:50051'])`); the
 * result calls remote functions as methods: `await client.train_model(data)`.
 */
export function connect(address: string | readonly string[], options: ClientOptions = {}): DynamicClient {
  return new Client(address, options) as DynamicClient;
}

export type { RemoteCall, RemoteStream };
