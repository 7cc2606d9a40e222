// What a node declares is checked when it registers, so no call can fail later because
// of a declaration: strategy names and options, requirements, the protocol version.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import { ComputeNode } from '@easyremote/node';
import { GatewayFrame, NodeFrame, NodeLinkService, PROTOCOL_VERSION, type EasyRemoteError } from '@easyremote/protocol';
import { startGateway, startNode } from './support/cluster.js';
import { RawNode, rawCall, rawGatewayClient, spec } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('declarations are checked at registration', () => {
  it('a strategy option of the wrong type is refused with INVALID_ARGUMENT naming the option and the node', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = new ComputeNode({ gateway: gw.address, nodeId: 'bad-options', telemetry: false });
    node.register('estimate', () => 1, { loadBalancing: { strategy: 'latency_based', priorLatencyMs: 'soon' } });
    cleanups.push(() => node.stop());
    const err = (await node.start().then(
      () => undefined,
      (e: unknown) => e,
    )) as EasyRemoteError;
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', grpcStatus: grpc.status.INVALID_ARGUMENT });
    expect(err.message).toContain('priorLatencyMs');
    expect(err.message).toContain('bad-options');
    expect(gw.nodes()).toEqual([]);
  });

  it('an option that is wrong for another strategy is refused too, so no per-call strategy can fail on it', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = new ComputeNode({ gateway: gw.address, nodeId: 'bad-other', telemetry: false });
    // round_robin reads no options, but a call may name consistent_hash, which reads virtualNodes.
    node.register('lookup', () => 1, { loadBalancing: { strategy: 'round_robin', virtualNodes: 'many' } });
    cleanups.push(() => node.stop());
    const err = (await node.start().then(
      () => undefined,
      (e: unknown) => e,
    )) as EasyRemoteError;
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(err.message).toContain('virtualNodes');
  });

  it('with valid options every strategy a call names routes the function; none fails INTERNAL', async () => {
    const gw = await startGateway();
    const node = await startNode(gw.address, (n) => n.register('lookup', () => 'ok', { loadBalancing: { strategy: 'latency_based', priorLatencyMs: 5, virtualNodes: 16 } }), {
      nodeId: 'good-options',
      telemetry: false,
    });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => node.stop(), () => client.close());
    for (const strategy of ['pick_first', 'round_robin', 'weighted_round_robin', 'random', 'least_connections', 'least_load', 'power_of_two', 'resource_aware', 'latency_based', 'cost_aware', 'consistent_hash', 'smart_adaptive', 'dynamic']) {
      expect(await client.call('lookup', [], { strategy, fallbackStrategy: 'random', affinityKey: 'k' })).toBe('ok');
    }
  });

  it('a node speaking another protocol version is refused with a message naming both versions', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const Ctor = grpc.makeGenericClientConstructor(NodeLinkService, 'NodeLink');
    const raw = new Ctor(gw.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { connect(): grpc.ClientDuplexStream<NodeFrame, GatewayFrame> };
    cleanups.push(() => raw.close());
    const stream = raw.connect();
    stream.on('error', () => undefined); // cancelled below
    const reply = new Promise<GatewayFrame>((resolve) => stream.once('data', resolve));
    stream.write(
      NodeFrame.fromPartial({
        register: { nodeId: 'future', instanceId: 'x', protocolVersion: PROTOCOL_VERSION + 1, functions: [{ name: 'f', kind: 'unary' }] },
      }),
    );
    const frame = await reply;
    stream.cancel();
    expect(frame.registered?.accepted).toBe(false);
    expect(frame.registered?.refusal?.code).toBe('INVALID_ARGUMENT');
    expect(frame.registered?.refusal?.message).toContain(`version ${PROTOCOL_VERSION + 1}`);
    expect(frame.registered?.refusal?.message).toContain(`version ${PROTOCOL_VERSION}`);
    expect(gw.nodes()).toEqual([]);
  });

  it('a rejected frame from the gateway is logged, not thrown: a node with no error listener keeps its stream and answers pings', async () => {
    // A stand-in gateway: accepts the registration, rejects a frame, then pings.
    const server = new grpc.Server();
    const pong = new Promise<number>((resolve) => {
      server.addService(NodeLinkService, {
        connect: (stream: grpc.ServerDuplexStream<NodeFrame, GatewayFrame>) => {
          stream.on('error', () => undefined);
          stream.on('data', (frame: NodeFrame) => {
            if (frame.register) {
              stream.write(GatewayFrame.fromPartial({ registered: { accepted: true, heartbeatMs: 1_000, leaseMs: 3_000, maxPayloadBytes: 1 << 20, gatewayId: 'stand-in' } }));
              stream.write(GatewayFrame.fromPartial({ rejected: { error: { code: 'INVALID_ARGUMENT', message: 'that frame made no sense' } } }));
              setTimeout(() => stream.write(GatewayFrame.fromPartial({ ping: { nonce: 7 } })), 100);
            }
            for (const f of frame.batch?.frames ?? [frame]) if (f.pong) resolve(f.pong.nonce);
          });
        },
      } as unknown as grpc.UntypedServiceImplementation);
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    cleanups.push(() => server.forceShutdown());
    const node = new ComputeNode({ gateway: `127.0.0.1:${port}`, nodeId: 'listener-less', telemetry: false });
    node.register('f', () => 1);
    cleanups.push(() => node.stop());
    expect(node.listenerCount('error')).toBe(0);
    await node.start();
    expect(await pong).toBe(7);
    expect(node.isRegistered).toBe(true);
  });

  it('a healthCheck that cannot be a timer or a count is refused at registration, naming the field', async () => {
    const gw = await startGateway();
    const raw = new RawNode(gw.address);
    cleanups.push(() => gw.stop(), () => raw.close());
    for (const [healthCheck, field] of [
      [{ timeout: 1e300 }, 'healthCheck.timeout'],
      [{ timeout: -1 }, 'healthCheck.timeout'],
      [{ timeout: 2.5 }, 'healthCheck.timeout'],
      [{ retryCount: 1e9 }, 'healthCheck.retryCount'],
      [{ retryCount: 'twice' }, 'healthCheck.retryCount'],
      [{ enabled: 'yes' }, 'healthCheck.enabled'],
    ] as const) {
      const reply = await raw.register('hc', [spec('f', { loadBalancingJson: JSON.stringify({ healthCheck }) })]);
      expect(reply.accepted, JSON.stringify(healthCheck)).toBe(false);
      expect(reply.refusal).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`node hc: function f: ${field} must be`) });
    }
    expect((await raw.register('hc', [spec('f', { loadBalancingJson: JSON.stringify({ healthCheck: { timeout: 2_147_483_647, retryCount: 1_000 } }) })])).accepted).toBe(true);
  });

  it('a refused re-registration leaves the node registered as before, on the same stream', async () => {
    const gw = await startGateway();
    const raw = new RawNode(gw.address);
    const client = rawGatewayClient(gw.address);
    cleanups.push(() => gw.stop(), () => raw.close(), () => client.close());
    expect((await raw.register('rereg', [spec('kept')])).accepted).toBe(true);
    const refused = await raw.register('rereg', [spec('kept'), spec('bad name!')]);
    expect(refused).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT' } });
    // The stream still carries the node: its frames are not taken for an unregistered stream's.
    const answered = rawCall(client, { function: 'kept', timeoutMs: 5000 });
    const invoke = (await raw.next((f) => f.invoke !== undefined)).invoke!;
    raw.send({ result: { attemptId: invoke.attemptId, payload: Buffer.from([0x2a]), execMs: 1 } });
    expect(await answered).toMatchObject({ status: grpc.status.OK, reply: { result: Buffer.from([0x2a]), nodeId: 'rereg' } });
    expect(raw.frames.filter((f) => f.registered !== undefined).map((f) => f.registered!.accepted)).toEqual([true, false]);
    expect(raw.status).toBeUndefined();
    expect(gw.nodes().map((n) => [n.nodeId, n.state, n.functions])).toEqual([['rereg', 'active', ['kept']]]);
  });
});
