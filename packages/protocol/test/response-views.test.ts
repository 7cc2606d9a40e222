// The generated response serializers return views of a buffer reused by the next
// response (serializeResponse), which is safe only because grpc-js's server copies a
// response behind its 5-byte gRPC prefix before write() returns. This holds grpc-js to
// it: a server writes many different responses in one synchronous loop, large and small,
// and every one must arrive as written. If a grpc-js release kept the serializer's buffer
// until later, the responses would arrive overwritten by the ones after them.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayService, StreamReply, type CallRequest } from '../src/generated/easyremote/v1/gateway.js';

const COUNT = 300;
/** Response i: a chunk of i-dependent size and content; every 7th is above the by-reference threshold, every 50th past the reused buffer's cap. */
function chunkOf(i: number): Buffer {
  const size = i % 50 === 0 ? 2_200_000 : i % 7 === 0 ? 70_000 + i : 10 + i;
  return Buffer.alloc(size, i & 0xff);
}

describe('response serializers and grpc-js', () => {
  let server: grpc.Server;
  let client: grpc.Client;
  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(GatewayService as unknown as grpc.ServiceDefinition, {
      call: (_: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED }),
      session: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
      callStream: (call: grpc.ServerWritableStream<CallRequest, StreamReply>) => {
        for (let i = 0; i < COUNT; i++) call.write({ chunk: chunkOf(i) });
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const Ctor = grpc.makeGenericClientConstructor(GatewayService as unknown as grpc.ServiceDefinition, 'Gateway');
    client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 8 * 2 ** 20 });
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  it('every response written in one synchronous loop arrives as it was written', async () => {
    const replies: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = (client as unknown as { callStream(req: CallRequest): grpc.ClientReadableStream<StreamReply> }).callStream({ function: 'f', args: Buffer.alloc(0) } as CallRequest);
      call.on('data', (r: StreamReply) => replies.push(r.chunk!));
      call.on('error', reject);
      call.on('end', resolve);
    });
    expect(replies).toHaveLength(COUNT);
    const wrong = replies.map((r, i) => (r.equals(chunkOf(i)) ? -1 : i)).filter((i) => i >= 0);
    expect(wrong).toEqual([]);
  }, 60_000);
});
