// A node with several gateways: refusals, drain, its report of its links and the limits on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { ComputeNode } from '@easyremote/node';
import { MAX_GATEWAY_LINKS } from '@easyremote/protocol';
import { startGateway, waitFor } from './support/cluster.js';
import { RawNode, spec } from './support/raw.js';

const quiet = { telemetry: false as const, logger: { level: 'silent' as const } };

describe('a node with several gateways', () => {
  let open: Gateway;
  let other: Gateway;
  let guarded: Gateway;

  beforeAll(async () => {
    [open, other, guarded] = await Promise.all([startGateway(), startGateway(), startGateway({ auth: { nodeTokens: ['node-secret'] } })]);
  });

  afterAll(async () => {
    await Promise.all([open?.stop(), other?.stop(), guarded?.stop()]);
  });

  it('needs at least one gateway, and takes `gateway` beside `gateways`', () => {
    expect(() => new ComputeNode({ ...quiet })).toThrow('a node needs a gateway');
    expect(() => new ComputeNode({ gateways: [''], ...quiet })).toThrow('host:port');
    expect(new ComputeNode({ gateway: 'a:1', gateways: ['b:2', 'a:1'], ...quiet }).gatewayAddresses).toEqual(['a:1', 'b:2']);
  });

  it('a refusal for good by one gateway closes that link only: the node serves through the others', async () => {
    const node = new ComputeNode({ gateways: [guarded.address, open.address], nodeId: 'half-welcome', ...quiet });
    node.register('hi', () => 'hi');
    const refusals: string[] = [];
    node.on('refused', (e) => refusals.push(e.code));
    await node.start();
    await waitFor('the refusal', () => refusals.length === 1);
    expect(refusals).toEqual(['UNAUTHENTICATED']);
    const client = connect(open.address);
    expect(await client.hi()).toBe('hi');
    expect(node.isRegistered).toBe(true);
    expect(guarded.nodes()).toEqual([]);
    client.close();
    await node.stop();
  });

  it('start() fails when every gateway refused it for good', async () => {
    const node = new ComputeNode({ gateways: [guarded.address, guarded.address.replace('127.0.0.1', 'localhost')], nodeId: 'unwelcome', ...quiet });
    node.register('hi', () => 'hi');
    await expect(node.start()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(node.isRegistered).toBe(false);
  });

  it('drain() drains it on every gateway; the call in flight still answers, then it leaves both', async () => {
    const node = new ComputeNode({ gateways: [open.address, other.address], nodeId: 'drainer', ...quiet });
    let release!: () => void;
    node.register('hold', () => new Promise<string>((resolve) => (release = () => resolve('held'))));
    await node.start();
    await waitFor('both gateways', () => open.nodes().some((n) => n.nodeId === 'drainer') && other.nodes().some((n) => n.nodeId === 'drainer'));
    const client = connect(other.address);
    const pending = client.call<string>('hold');
    await waitFor('the call to start', () => node.activeCalls === 1);
    const drained = node.drain();
    await waitFor('draining on both', () => [open, other].every((gw) => gw.nodes().find((n) => n.nodeId === 'drainer')?.state === 'draining'));
    release();
    expect(await pending).toBe('held');
    await drained;
    await waitFor('gone from both', () => [open, other].every((gw) => !gw.nodes().some((n) => n.nodeId === 'drainer')));
    client.close();
  });

  it('a register frame may report at most MAX_GATEWAY_LINKS links; a heartbeat with more keeps the last list', async () => {
    const raw = new RawNode(open.address);
    const links = (n: number) => Array.from({ length: n }, (_, i) => ({ address: `gw-${i}:50051`, gatewayId: '', registered: false, thisLink: i === 0 }));
    const refused = await new Promise<unknown>((resolve) => {
      raw.send({ register: { nodeId: 'many-links', token: '', functions: [spec('f')], capabilities: undefined, protocolVersion: 1, instanceId: 'i', gateways: links(MAX_GATEWAY_LINKS + 1), directAddress: '' } });
      void raw.next((f) => f.registered !== undefined).then((f) => resolve(f.registered));
    });
    expect(refused).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_gateway_links', limit: MAX_GATEWAY_LINKS, actual: MAX_GATEWAY_LINKS + 1 } });
    const from = raw.frames.length;
    raw.send({ register: { nodeId: 'many-links', token: '', functions: [spec('f')], capabilities: undefined, protocolVersion: 1, instanceId: 'i', gateways: links(2), directAddress: '' } });
    expect((await raw.next((f) => f.registered !== undefined, 5000, from)).registered).toMatchObject({ accepted: true });
    raw.send({ heartbeat: { cpuPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [], functions: [], hasTelemetry: false, gateways: links(MAX_GATEWAY_LINKS + 1) } });
    raw.send({ heartbeat: { cpuPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [], functions: [], hasTelemetry: false, gateways: [] } });
    await new Promise((r) => setTimeout(r, 100));
    expect(open.nodes().find((n) => n.nodeId === 'many-links')?.gateways).toEqual([
      { address: 'gw-0:50051', gatewayId: open.id, registered: true, self: true },
      { address: 'gw-1:50051', gatewayId: '', registered: false, self: false },
    ]);
    raw.close();
  });
});
