// The plain grpc-js peer's service: one unary method whose messages are MessagePack
// itself (no protobuf envelope), shared by its server and its clients. It uses the same
// MessagePack codec as the project, so payload encoding costs the same on both sides.
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from '@easyremote/protocol';
// Room for the 16 MiB echo and more; grpc-js refuses messages over 4 MiB by default.
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const MESSAGE_LIMITS = { 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES };

export const EchoService = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: unknown): Buffer => encode(value),
    requestDeserialize: (bytes: Buffer): unknown => decode(bytes),
    responseSerialize: (value: unknown): Buffer => encode(value),
    responseDeserialize: (bytes: Buffer): unknown => decode(bytes),
  },
} satisfies grpc.ServiceDefinition;

type EchoGrpcClient = grpc.Client & { echo(value: unknown, cb: (err: grpc.ServiceError | null, reply?: unknown) => void): grpc.ClientUnaryCall };
const EchoClientConstructor = grpc.makeGenericClientConstructor(EchoService, 'Echo');

/** One channel to `address` (the server itself, or a proxy in front of it). */
export class EchoClient {
  private readonly client: EchoGrpcClient;

  constructor(address: string) {
    this.client = new EchoClientConstructor(address, grpc.credentials.createInsecure(), MESSAGE_LIMITS) as unknown as EchoGrpcClient;
  }

  echo<T>(value: T): Promise<T> {
    return new Promise((resolve, reject) => this.client.echo(value, (err, reply) => (err ? reject(err) : resolve(reply as T))));
  }

  close(): void {
    this.client.close();
  }
}
