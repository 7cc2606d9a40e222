// Failure cases not covered elsewhere: size limits, duplicate node ids,
// tokens, and garbage on the node stream. The gateway must answer each clearly and stay up.
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, connect } from '@easyremote/client';
import { ComputeNode } from '@easyremote/node';
import { EasyRemoteError, ERROR_TRAILER, ErrorDetail, FunctionSpec, GatewayFrame, Heartbeat, NodeFrame, encode, encodeArgs } from '@easyremote/protocol';
import { ROOT, startGateway, startNode, waitFor } from './support/cluster.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('limits and bad input', () => {
  it('oversized arguments and results get PAYLOAD_TOO_LARGE naming the limit; the gateway keeps serving', async () => {
    const gw = await startGateway({ maxPayloadBytes: 10_000 });
    const node = await startNode(gw.address, (n) => n.register('size', (bytes: number) => Buffer.alloc(bytes)).register('len', (b: Buffer) => b.length), { nodeId: 'sizer', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => node.stop(), () => client.close());

    const big = await client.len(Buffer.alloc(20_000)).then(() => undefined, (e: unknown) => e);
    expect(big).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', grpcStatus: grpc.status.RESOURCE_EXHAUSTED });
    expect((big as Error).message).toMatch(/20\d{3} bytes exceed the gateway's limit of 10000 bytes/);

    const bigResult = await client.size(50_000).then(() => undefined, (e: unknown) => e);
    expect(bigResult).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', nodeId: 'sizer' });
    expect((bigResult as Error).message).toMatch(/limit is 10000 bytes/);

    // Far past the gRPC message limit. Over a session it travels in parts, so the gateway
    // refuses it naming its payload limit; the session and its other calls are unharmed.
    const huge = await client.len(Buffer.alloc(200_000)).then(() => undefined, (e: unknown) => e);
    expect(huge).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', grpcStatus: grpc.status.RESOURCE_EXHAUSTED, limit: { name: 'max_payload_bytes', limit: 10_000, actual: encodeArgs([Buffer.alloc(200_000)]).length } });
    // As one message (a per-call client), grpc-js refuses it naming the sizes; still no crash.
    const perCall = connect(gw.address, { transport: 'unary' });
    cleanups.push(() => perCall.close());
    const hugeMessage = await perCall.len(Buffer.alloc(200_000)).then(() => undefined, (e: unknown) => e);
    expect(hugeMessage).toMatchObject({ grpcStatus: grpc.status.RESOURCE_EXHAUSTED });
    expect((hugeMessage as Error).message).toMatch(/larger than max/);

    expect(await client.len(Buffer.alloc(100))).toBe(100);
    expect((await client.size(100)).length).toBe(100);
  });

  it('bytes that are not a CallRequest get INVALID_ARGUMENT with the trailer, on Call and on CallStream', async () => {
    const gw = await startGateway();
    const c = new grpc.Client(gw.address, grpc.credentials.createInsecure());
    cleanups.push(() => gw.stop(), () => c.close());
    const identity = (b: Buffer) => b;
    // A varint that never ends, a field of wire type 7, a CallOptions cut inside its first field.
    for (const bytes of [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x0f]), Buffer.from([0x1a, 0x05, 0x0a, 0x80])]) {
      for (const path of ['/easyremote.v1.Gateway/Call', '/easyremote.v1.Gateway/CallStream']) {
        const call = path.endsWith('/Call') ? c.makeUnaryRequest(path, identity, identity, bytes, () => undefined) : c.makeServerStreamRequest(path, identity, identity, bytes);
        call.on('error', () => undefined);
        const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
        const trailer = status.metadata.get(ERROR_TRAILER)[0];
        expect(status.code, path).toBe(grpc.status.INVALID_ARGUMENT);
        expect(ErrorDetail.decode(trailer as Buffer)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^the request is not a CallRequest: /) });
      }
    }
  });
});

describe('registration', () => {
  it('a second instance claiming a connected node id is refused and does not displace the first', async () => {
    const gw = await startGateway();
    const first = await startNode(gw.address, (n) => n.register('who', () => 'first'), { nodeId: 'same-id', telemetry: false });
    const impostor = new ComputeNode({ gateway: gw.address, nodeId: 'same-id', telemetry: false, backoff: { initialMs: 1000, maxMs: 1000 } });
    impostor.register('who', () => 'impostor');
    const refused = new Promise<EasyRemoteError>((resolve) => impostor.once('refused', resolve));
    void impostor.start().catch(() => undefined);
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => first.stop(), () => impostor.stop(), () => client.close());

    const err = await refused;
    expect(err).toMatchObject({ code: 'REGISTRATION_REFUSED', grpcStatus: grpc.status.ALREADY_EXISTS });
    expect(err.message).toMatch(/node id same-id is already connected/);
    for (let i = 0; i < 5; i++) expect(await client.who()).toBe('first');
    expect(gw.nodes()).toHaveLength(1);
  });

  it('tokens: nodes and clients without the right one are refused with UNAUTHENTICATED', async () => {
    const gw = await startGateway({ auth: { nodeTokens: ['node-secret'], clientTokens: ['client-secret'] } });
    cleanups.push(() => gw.stop());
    const intruder = new ComputeNode({ gateway: gw.address, nodeId: 'intruder', telemetry: false, token: 'guess' });
    intruder.register('who', () => 'intruder');
    await expect(intruder.start()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const node = await startNode(gw.address, (n) => n.register('who', () => 'trusted'), { nodeId: 'trusted', telemetry: false, token: 'node-secret' });
    cleanups.push(() => node.stop());

    const anonymous = new Client(gw.address);
    const wrong = new Client(gw.address, { token: 'nope' });
    const right = connect(gw.address, { token: 'client-secret' });
    cleanups.push(() => anonymous.close(), () => wrong.close(), () => right.close());
    await expect(anonymous.call('who')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', grpcStatus: grpc.status.UNAUTHENTICATED });
    await expect(wrong.call('who')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await right.who()).toBe('trusted');
  });

  it('refuses to listen beyond loopback without TLS and tokens unless told to', async () => {
    const { Gateway } = await import('@easyremote/gateway');
    await expect(new Gateway({ port: 0, host: '0.0.0.0', metrics: false }).start()).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0 without TLS and authentication: missing TLS .*node authentication .*client tokens/,
    );
  });
});

describe('malformed node streams', () => {
  const raw = (address: string) => new grpc.Client(address, grpc.credentials.createInsecure());
  const nodeStream = (c: grpc.Client) => {
    const s = c.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (f: NodeFrame) => Buffer.from(NodeFrame.encode(f).finish()), (b: Buffer) => GatewayFrame.decode(b));
    s.on('error', () => undefined);
    return s;
  };
  const register = (nodeId: string, functions: Array<Partial<FunctionSpec>>): NodeFrame => ({
    register: { nodeId, token: '', functions: functions.map((f) => FunctionSpec.fromPartial(f)), capabilities: undefined, protocolVersion: 1, instanceId: nodeId, gateways: [], directAddress: '' },
  });

  it('garbage bytes, frames before register and answers for unknown attempts leave the gateway serving', async () => {
    const gw = await startGateway();
    let release = () => undefined as void;
    const held = () => new Promise<string>((resolve) => (release = () => resolve('pong')));
    const node = await startNode(gw.address, (n) => n.register('ping', () => 'pong').register('held', held), { nodeId: 'honest', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => node.stop(), () => client.close());

    // 1. Bytes that are not a NodeFrame.
    const c1 = raw(gw.address);
    const garbage = c1.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (b: Buffer) => b, (b: Buffer) => b);
    garbage.on('error', () => undefined);
    garbage.write(Buffer.from([0xff, 0xff, 0xff, 0x07, 0x01]));
    const garbageEnded = new Promise<grpc.StatusObject>((r) => garbage.on('status', r));

    // 2. A result before any register frame.
    const c2 = raw(gw.address);
    const early = c2.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (f: NodeFrame) => Buffer.from(NodeFrame.encode(f).finish()), (b: Buffer) => GatewayFrame.decode(b));
    early.on('error', () => undefined);
    const replies: GatewayFrame[] = [];
    early.on('data', (f: GatewayFrame) => replies.push(f));
    early.write({ result: { attemptId: 1, payload: Buffer.from([0xc0]), execMs: 1 } });

    expect((await garbageEnded).code).not.toBe(grpc.status.OK);
    await waitFor('a refusal for the early frame', () => replies.length > 0);
    expect(replies[0]!.registered).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/first frame .* must be register/) } });

    // 3. A registered node answering attempts it was never given, among them one in flight
    //    on another node: dropped, and the real answer still reaches the caller.
    const inFlight = client.call<string>('held');
    await waitFor('the held call to reach honest', () => node.activeCalls === 1);
    const c3 = raw(gw.address);
    const liar = c3.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (f: NodeFrame) => Buffer.from(NodeFrame.encode(f).finish()), (b: Buffer) => GatewayFrame.decode(b));
    liar.on('error', () => undefined);
    const registered = new Promise((r) => liar.once('data', r));
    liar.write({ register: { nodeId: 'liar', token: '', functions: [{ name: 'other', kind: 'unary', timeoutMs: 0, maxConcurrent: 0, queueSize: 0, idempotent: false, cacheable: false, cacheTtlMs: 0, version: '', tags: [], description: '', costPerHour: 0, performanceTier: 0, priority: 0, requirements: {}, loadBalancingJson: '', worker: false }], capabilities: undefined, protocolVersion: 1, instanceId: 'x', gateways: [], directAddress: '' } });
    await registered;
    for (let id = 1; id < 200; id++) {
      liar.write({ result: { attemptId: id, payload: Buffer.from([0xa3, 0x62, 0x61, 0x64]), execMs: 1 } }); // "bad"
      liar.write({ error: { attemptId: id, error: ErrorDetail.fromPartial({ code: 'REMOTE_ERROR', message: 'forged', nodeId: 'honest' }), execMs: 1 } });
    }
    // Frames on one stream are handled in order: once the gateway sees the liar draining, it has seen every forged answer.
    liar.write({ drain: {} });
    await waitFor('the liar to be draining', () => gw.nodes().find((n) => n.nodeId === 'liar')?.state === 'draining');
    expect(gw.dispatcher.inFlight).toBe(1);
    release();
    expect(await inFlight).toBe('pong');
    expect(gw.nodes().map((n) => n.nodeId).sort()).toEqual(['honest', 'liar']);
    expect(await client.ping()).toBe('pong');
    for (const c of [c1, c2, c3]) c.close();
  });

  it('frames right behind one refused before register do not keep the stream from ending with a status', async () => {
    const gw = await startGateway();
    // Raw HTTP/2, so that the frames travel in one DATA frame and all reach the gateway
    // before its refusal of the first can reach the node.
    const session = http2.connect(`http://${gw.address}`);
    cleanups.push(() => gw.stop(), () => session.destroy());
    session.on('error', () => undefined);
    const stream = session.request({ ':method': 'POST', ':path': '/easyremote.v1.NodeLink/Connect', 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    const status = new Promise<string | undefined>((resolve) => {
      stream.on('trailers', (h) => resolve(String(h['grpc-status'])));
      setTimeout(() => resolve(undefined), 2_000);
    });
    const heartbeat = Buffer.from(NodeFrame.encode({ heartbeat: Heartbeat.fromPartial({ cpuPercent: 1 }) }).finish());
    const head = Buffer.alloc(5);
    head.writeUInt32BE(heartbeat.length, 1);
    const framed = Buffer.concat([head, heartbeat]);
    stream.write(Buffer.concat(Array.from({ length: 5 }, () => framed)));
    expect(await status).toBeDefined();
  });

  it('a refused re-registration leaves the node registered and serving on its stream', async () => {
    const gw = await startGateway();
    const c = raw(gw.address);
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => client.close(), () => c.close());
    const node = nodeStream(c);
    const replies: GatewayFrame[] = [];
    node.on('data', (f: GatewayFrame) => {
      replies.push(f);
      if (f.invoke) node.write({ result: { attemptId: f.invoke.attemptId, payload: encode('still here'), execMs: 1 } });
    });
    node.write(register('steady', [{ name: 'steady_fn', kind: 'unary' }]));
    await waitFor('the registration', () => replies.length === 1);
    node.write(register('steady', [{ name: 'not a function name', kind: 'unary' }]));
    node.write({ heartbeat: Heartbeat.fromPartial({}) });
    await waitFor('the refusal', () => replies.length >= 2);
    expect(await client.call('steady_fn', [], { timeout: 2_000 })).toBe('still here');
    expect(replies.filter((f) => f.registered).map((f) => f.registered!.accepted)).toEqual([true, false]);
    expect(gw.nodes().map((n) => `${n.nodeId} ${n.state}`)).toEqual(['steady active']);
  });

  it("a node's error message cut inside an emoji at the trailer limit still reaches the caller, at once", async () => {
    const gw = await startGateway();
    const c = raw(gw.address);
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => client.close(), () => c.close());
    const node = nodeStream(c);
    // A node in another language: valid UTF-8, which the gateway cuts to 1,024 characters for the trailer.
    node.on('data', (f: GatewayFrame) => {
      if (f.invoke) node.write({ error: { attemptId: f.invoke.attemptId, error: ErrorDetail.fromPartial({ code: 'REMOTE_ERROR', message: '😀'.repeat(600), remoteName: 'ValueError' }), execMs: 1 } });
    });
    const registered = new Promise((resolve) => node.once('data', resolve));
    node.write(register('polyglot', [{ name: 'f', kind: 'unary' }, { name: 'g', kind: 'stream' }]));
    await registered;
    const unary = () => client.call('f', [], { timeout: 5_000 });
    const stream = async () => {
      for await (const _ of client.stream('g', [], { timeout: 5_000 })) void _;
    };
    for (const run of [unary, stream]) {
      const t0 = Date.now();
      const err = await run().then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'ValueError' });
      expect((err as Error).message).toMatch(/^(😀)+…$/u);
      expect(Date.now() - t0).toBeLessThan(1000);
    }
  });
});

describe('mass timeouts', () => {
  it('1,500 calls timing out together do not take down their connection for other calls', async () => {
    const gw = await startGateway({ queueSize: 0 });
    const node = await startNode(gw.address, (n) => n.register('hang', () => new Promise(() => undefined)).register('ping', () => 'pong'), { nodeId: 'hanger', telemetry: false });
    cleanups.push(() => gw.stop(), () => node.stop());
    // The client in its own process, as in production: its timers do not share our event loop.
    const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/burst-client.ts', import.meta.url))], {
      cwd: ROOT,
      env: { ...process.env, GATEWAY: gw.address },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(JSON.parse(run.stdout)).toEqual({ hung: { DEADLINE_EXCEEDED: 1500 }, pings: { pong: 200 } });
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['hanger']);
  }, 40_000);
});
