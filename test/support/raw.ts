// Test support: the gateway's two services driven with nothing but grpc-js and the proto,
// as a client or node written in another language (or a hostile one) would drive them.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import {
  CallOptions,
  ClientFrame,
  ERROR_TRAILER,
  ErrorDetail,
  FunctionSpec,
  GatewayFrame,
  GatewayService,
  NodeFrame,
  PROTOCOL_VERSION,
  ServerFrame,
  type CallReply,
  type CallRequest,
  type Capabilities,
  type Registered,
} from '@easyremote/protocol';

const Raw = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');

export type RawGatewayClient = grpc.Client & {
  call(req: CallRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReply) => void): grpc.ClientUnaryCall;
};

/** A Gateway client that knows only the proto (channel options as given). */
export function rawGatewayClient(address: string, options: grpc.ChannelOptions = {}): RawGatewayClient {
  return new Raw(address, grpc.credentials.createInsecure(), options) as unknown as RawGatewayClient;
}

export interface RawOutcome {
  status: grpc.status;
  /** The trailer's ErrorDetail, when the call failed with one. */
  detail: ErrorDetail | undefined;
  /** The status details text. */
  details: string;
  reply: CallReply | undefined;
  ms: number;
}

export interface RawCallInput {
  function: string;
  args?: Buffer;
  options?: Partial<CallOptions>;
  metadata?: Record<string, string>;
  timeoutMs?: number;
}

/** One unary Call; never rejects: the outcome carries the status and the trailer. */
export function rawCall(client: RawGatewayClient, input: RawCallInput): Promise<RawOutcome> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(input.metadata ?? {})) md.set(k, v);
  const req: CallRequest = { function: input.function, args: input.args ?? Buffer.alloc(0), options: input.options ? CallOptions.fromPartial(input.options) : undefined };
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.call(req, md, { deadline: Date.now() + (input.timeoutMs ?? 10_000) }, (err, reply) => {
      const ms = performance.now() - t0;
      if (err === null) {
        resolve({ status: grpc.status.OK, detail: undefined, details: '', reply, ms });
        return;
      }
      const bin = err.metadata?.get(ERROR_TRAILER)[0];
      resolve({ status: err.code, detail: bin instanceof Buffer ? ErrorDetail.decode(bin) : undefined, details: err.details, reply: undefined, ms });
    });
  });
}

/** A declaration with every field at its proto default except those given. */
export function spec(name: string, fields: Partial<FunctionSpec> = {}): FunctionSpec {
  return FunctionSpec.fromPartial({ name, kind: 'unary', ...fields });
}

/**
 * A node stream driven frame by frame. It answers pings by itself (so its lease stays
 * alive) unless told not to, and keeps every frame the gateway sends for `next`.
 */
export class RawNode {
  readonly frames: GatewayFrame[] = [];
  readonly client: grpc.Client;
  readonly stream: grpc.ClientDuplexStream<Buffer, GatewayFrame>;
  /** The stream's final status, once it ended. */
  status: grpc.StatusObject | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(address: string, options: { answerPings?: boolean } = {}) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
    this.stream = this.client.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (b: Buffer) => b, (b: Buffer) => GatewayFrame.decode(b));
    this.stream.on('error', () => undefined);
    this.stream.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      this.wake();
    });
    this.stream.on('data', (f: GatewayFrame) => {
      if (f.ping && options.answerPings !== false) this.send({ pong: { nonce: f.ping.nonce } });
      this.frames.push(f);
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  send(frame: NodeFrame): boolean {
    return this.sendBytes(Buffer.from(NodeFrame.encode(frame).finish()));
  }

  /** Bytes as the frame's serialized form (for frames the generated encoder would not write). */
  sendBytes(bytes: Buffer): boolean {
    return this.stream.write(bytes);
  }

  /** The first frame (received so far or later) that matches, after index `from`. */
  next(match: (f: GatewayFrame) => boolean, timeoutMs = 10_000, from = 0): Promise<GatewayFrame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.frames.slice(from).find(match);
        if (hit !== undefined) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        } else if (this.status !== undefined) {
          this.waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`node stream ended (${this.status.code} ${this.status.details}) before the frame came`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(from).map((f) => Object.keys(f).filter((k) => f[k as keyof GatewayFrame] !== undefined)))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Sends a register frame and resolves with the gateway's answer to it. */
  async register(nodeId: string, functions: FunctionSpec[], capabilities?: Partial<Capabilities>): Promise<Registered> {
    const from = this.frames.length;
    this.send({
      register: {
        nodeId,
        token: '',
        functions,
        capabilities: capabilities ? { cpuCores: 0, memoryTotalBytes: 0, gpus: [], labels: {}, costPerHour: 0, ...capabilities } : undefined,
        protocolVersion: PROTOCOL_VERSION,
        instanceId: `${nodeId}-raw`,
        gateways: [],
        directAddress: '',
      },
    });
    return (await this.next((f) => f.registered !== undefined, 10_000, from)).registered!;
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** A frame with any of its fields, at any depth, left out. */
type FramePartial<T> = T extends Buffer ? T : T extends object ? { [K in keyof T]?: FramePartial<T[K]> } : T;

/**
 * A Gateway.Session stream driven frame by frame, as a client in another language would
 * drive it. Batches the gateway sends are unpacked, so `frames` holds single frames.
 */
export class RawSession {
  readonly frames: ServerFrame[] = [];
  readonly client: grpc.Client;
  readonly stream: grpc.ClientDuplexStream<Buffer, ServerFrame>;
  /** The stream's final status, once it ended. */
  status: grpc.StatusObject | undefined;
  /** The response headers, once they came. */
  headers: grpc.Metadata | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(address: string, token?: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    this.stream = this.client.makeBidiStreamRequest('/easyremote.v1.Gateway/Session', (b: Buffer) => b, (b: Buffer) => ServerFrame.decode(b), md);
    this.stream.on('error', () => undefined);
    this.stream.on('metadata', (headers: grpc.Metadata) => {
      this.headers = headers;
      this.wake();
    });
    this.stream.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      this.wake();
    });
    this.stream.on('data', (f: ServerFrame) => {
      this.frames.push(...(f.batch ? f.batch.frames : [f]));
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Sends a frame; fields left out take their proto defaults. */
  send(frame: FramePartial<ClientFrame>): void {
    this.stream.write(Buffer.from(ClientFrame.encode(ClientFrame.fromPartial(frame as never)).finish()));
  }

  /** Resolves once `check` holds (checked on every frame and at the end of the stream). */
  until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => {
        if (!check()) return;
        this.waiters.delete(test);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames.map((f) => Object.keys(f).filter((k) => f[k as keyof ServerFrame] !== undefined)))}`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** A protobuf varint (for frames written by hand). */
export function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** A length-delimited field (tag, length, bytes). */
export function field(fieldNumber: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint(BigInt((fieldNumber << 3) | 2)), varint(BigInt(bytes.length)), bytes]);
}

/** A varint field (tag, value). */
export function varintField(fieldNumber: number, value: bigint): Buffer {
  return Buffer.concat([varint(BigInt(fieldNumber << 3)), varint(value)]);
}

/** A gRPC message on the wire: compressed flag, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

export interface H2Outcome {
  /** grpc-status from the trailers (or a trailers-only response). */
  status: number;
  /** grpc-message, decoded. */
  message: string;
  detail: ErrorDetail | undefined;
  /** The response's gRPC messages, unframed. */
  messages: Buffer[];
}

export interface H2Exchange {
  readonly stream: http2.ClientHttp2Stream;
  /** Starts reading the response (a paused exchange reads nothing until then). */
  read(): void;
  readonly done: Promise<H2Outcome>;
  close(): void;
}

/**
 * One gRPC request over a bare HTTP/2 connection, with any headers (grpc-encoding, say)
 * and a body written as given. With `paused`, the response is not read, so HTTP/2 flow
 * control holds the server back (grpc-js clients read a stream fully whatever the app does).
 */
export function h2Request(address: string, path: string, body: Buffer, options: { headers?: http2.OutgoingHttpHeaders; paused?: boolean } = {}): H2Exchange {
  // As grpc-js does: Node's default session memory cap (10 MB) would reset a large request here.
  const session = http2.connect(`http://${address}`, { maxSessionMemory: Number.MAX_SAFE_INTEGER });
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...options.headers });
  stream.on('error', () => undefined);
  const chunks: Buffer[] = [];
  let headers: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders = {};
  stream.on('response', (h) => (headers = h));
  stream.on('trailers', (t) => (trailers = t));
  const reading = () => stream.on('data', (d: Buffer) => chunks.push(d));
  if (options.paused) stream.pause();
  else reading();
  stream.end(body);
  const done = new Promise<H2Outcome>((resolve) => {
    stream.on('close', () => {
      const all = { ...headers, ...trailers };
      const bin = all[ERROR_TRAILER];
      const data = Buffer.concat(chunks);
      const messages: Buffer[] = [];
      for (let at = 0; at + 5 <= data.length; ) {
        const len = data.readUInt32BE(at + 1);
        messages.push(data.subarray(at + 5, at + 5 + len));
        at += 5 + len;
      }
      resolve({
        status: Number(all['grpc-status'] ?? -1),
        message: decodeURIComponent(String(all['grpc-message'] ?? '')),
        detail: typeof bin === 'string' ? ErrorDetail.decode(Buffer.from(bin, 'base64')) : undefined,
        messages,
      });
    });
  });
  return {
    stream,
    read: () => {
      reading();
      stream.resume();
    },
    done,
    close: () => session.close(),
  };
}
