// Two gateways in processes of their own, three nodes linked to both, clients that spread
// their calls over the gateways themselves and clients that go through nginx (the shipped
// deploy/nginx configuration). One gateway is SIGKILLed under load and started again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, connect, type DynamicClient } from '@easyremote/client';
import { ComputeNode } from '@easyremote/node';
import { freePort, waitFor } from './support/cluster.js';
import { spawnGateway, type GatewayProcess } from './support/gateway-process.js';
import { captureLogs } from './support/log-capture.js';
import { nginxAvailable, startNginx, type NginxProcess } from './support/nginx.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE_IDS = ['n1', 'n2', 'n3'];
const nodeLogs = captureLogs('info');

function startNodes(gateways: string[], ids = NODE_IDS): Promise<ComputeNode[]> {
  return Promise.all(
    ids.map(async (nodeId) => {
      const node = new ComputeNode({ gateways, nodeId, telemetry: false, logger: nodeLogs.logger, backoff: { initialMs: 50, maxMs: 400 } });
      node.register('idem', async (ms: number) => (await sleep(ms), nodeId), { idempotent: true });
      node.register('once', async (ms: number) => (await sleep(ms), nodeId));
      node.register('affine', () => nodeId, { idempotent: true, loadBalancing: 'consistent_hash' });
      await node.start();
      return node;
    }),
  );
}

/** Resolves once every gateway lists every node as registered. */
async function allRegistered(admins: AdminClient[], count: number): Promise<void> {
  await waitFor(
    `${count} nodes on each gateway`,
    async () => {
      try {
        const lists = await Promise.all(admins.map((a) => a.nodes()));
        return lists.every((l) => l.filter((n) => n.state === 'active').length === count);
      } catch {
        return false;
      }
    },
    20_000,
    50,
  );
}

describe.skipIf(!nginxAvailable())('two gateways, three nodes, clients direct and through nginx', () => {
  let portA: number;
  let gwA: GatewayProcess;
  let gwB: GatewayProcess;
  let nginx: NginxProcess;
  let nodes: ComputeNode[];
  let adminA: AdminClient;
  let adminB: AdminClient;
  const clients: DynamicClient[] = [];
  const peersEnv = (other: number) => ({ PEERS: `127.0.0.1:${other}`, HTTP_PORT: '0' });

  beforeAll(async () => {
    [portA] = await Promise.all([freePort()]);
    const portB = await freePort();
    [gwA, gwB] = await Promise.all([spawnGateway(portA, peersEnv(portB)), spawnGateway(portB, peersEnv(portA))]);
    nginx = await startNginx([gwA.address, gwB.address], await freePort());
    nodes = await startNodes([gwA.address, gwB.address]);
    adminA = new AdminClient(gwA.address);
    adminB = new AdminClient(gwB.address);
    await allRegistered([adminA, adminB], 3);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    adminA?.close();
    adminB?.close();
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    gwA?.kill();
    gwB?.kill();
    await nginx?.stop();
  });

  it('every node is linked to both gateways, and each gateway shows its peer and the links', async () => {
    // A node tells its other gateways at once when a link registers: no heartbeat interval to wait for.
    const settled = async (admin: AdminClient) => (await admin.nodes()).every((n) => n.gateways.length === 2 && n.gateways.every((g) => g.registered));
    await waitFor('both links registered in the node lists', async () => (await settled(adminA)) && (await settled(adminB)), 5000, 25);
    const listed = await adminA.nodes();
    for (const n of listed) {
      expect(n.gateways.map((g) => g.address).sort()).toEqual([gwA.address, gwB.address].sort());
      expect(n.gateways.find((g) => g.self)).toMatchObject({ address: gwA.address, gatewayId: gwA.id, registered: true });
      expect(n.gateways.find((g) => !g.self)).toMatchObject({ address: gwB.address, gatewayId: gwB.id, registered: true });
    }
    const peers = await (await fetch(`http://127.0.0.1:${gwA.httpPort}/api/peers`)).json();
    expect(peers).toEqual({
      self: { id: gwA.id, address: gwA.address, knownAs: [gwA.address], nodes: 3 },
      peers: [{ address: gwB.address, ids: [gwB.id], nodesLinked: 3, nodesRegistered: 3 }],
      unlisted: [],
    });
    expect(await adminB.peers()).toMatchObject({ self: { id: gwB.id }, peers: [{ address: gwA.address, ids: [gwA.id], nodesRegistered: 3 }] });
  });

  it('consistent_hash sends a key to the same node through either gateway', async () => {
    const viaA = connect(gwA.address);
    const viaB = connect(gwB.address, { transport: 'unary' });
    clients.push(viaA, viaB);
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const key = `machine-${i}`;
      const [a, b] = await Promise.all([viaA.call<string>('affine', [], { affinityKey: key }), viaB.call<string>('affine', [], { affinityKey: key })]);
      expect(b, key).toBe(a);
      served.add(a);
    }
    expect(served.size).toBeGreaterThan(1);
  });

  it('a node linked to both gateways never runs more than its maxConcurrent, and each gateway counts the calls the other sent it', async () => {
    let running = 0;
    let most = 0;
    const node = new ComputeNode({ gateways: [gwA.address, gwB.address], nodeId: 'limited-node', telemetry: false, logger: { level: 'silent' }, heartbeatMs: 200 });
    node.register(
      'limited',
      async () => {
        most = Math.max(most, ++running);
        await sleep(60);
        running--;
        return 'ok';
      },
      { maxConcurrent: 2, queueSize: 50 },
    );
    await node.start();
    const viaA = connect(gwA.address);
    const viaB = connect(gwB.address, { transport: 'unary' });
    clients.push(viaA, viaB);
    await waitFor('limited on both gateways', async () => (await adminA.functions()).some((f) => f.name === 'limited') && (await adminB.functions()).some((f) => f.name === 'limited'));
    let elsewhereSeen = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const provider = (await adminA.functions()).find((f) => f.name === 'limited')?.providers[0];
        elsewhereSeen = Math.max(elsewhereSeen, provider?.inFlightElsewhere ?? 0);
        await sleep(20);
      }
    })();
    const results = await Promise.all([...Array.from({ length: 25 }, () => viaA.limited()), ...Array.from({ length: 25 }, () => viaB.limited())]);
    watching = false;
    await watcher;
    await node.stop();
    expect(results).toEqual(Array(50).fill('ok'));
    expect(most).toBe(2);
    // Gateway A saw, from the node's heartbeats, calls it had not sent (gateway B's).
    expect(elsewhereSeen).toBeGreaterThan(0);
  }, 30_000);

  it('SIGKILL of one gateway under ~32 calls: no idempotent call fails, calls in flight on it fail GATEWAY_LOST within 1 s, it takes calls again within 2 s of its restart', async () => {
    const direct = connect([gwA.address, gwB.address]);
    const directUnary = connect([gwA.address, gwB.address], { transport: 'unary' });
    const proxied = connect(nginx.address);
    const proxiedUnary = connect(nginx.address, { transport: 'unary' });
    const load = [direct, directUnary, proxied, proxiedUnary];
    clients.push(...load);
    // A client learns from the gateways which functions are idempotent (the first reply says so).
    await Promise.all(load.map((c) => Promise.all([c.idem(1), c.once(1)])));

    interface Outcome {
      fn: 'idem' | 'once';
      client: number;
      startedAt: number;
      endedAt: number;
      code?: string;
    }
    const outcomes: Outcome[] = [];
    let stopping = false;
    const worker = async (client: DynamicClient, index: number, fn: 'idem' | 'once') => {
      while (!stopping) {
        const startedAt = performance.now();
        try {
          await client.call(fn, [120], { timeout: 8000 });
          outcomes.push({ fn, client: index, startedAt, endedAt: performance.now() });
        } catch (err) {
          outcomes.push({ fn, client: index, startedAt, endedAt: performance.now(), code: (err as { code?: string }).code ?? String(err) });
        }
      }
    };
    const workers = load.flatMap((c, i) => [0, 1, 2, 3].flatMap(() => [worker(c, i, 'idem'), worker(c, i, 'once')]));
    await sleep(1000);

    const killedAt = performance.now();
    gwA.kill('SIGKILL');
    await gwA.exited;
    await sleep(500);
    gwA = await spawnGateway(portA, peersEnv(gwB.port));
    const restartedAt = performance.now();
    adminA.close();
    adminA = new AdminClient(gwA.address);
    await waitFor(
      'the restarted gateway to serve a call',
      async () => {
        try {
          return (await adminA.metrics()).live.overall.calls > 0;
        } catch {
          return false;
        }
      },
      5000,
      25,
    );
    const servingAt = performance.now();
    await sleep(300);
    stopping = true;
    await Promise.all(workers);

    const inFlightAtKill = outcomes.filter((o) => o.startedAt < killedAt && o.endedAt > killedAt);
    expect(inFlightAtKill.length).toBeGreaterThanOrEqual(24);
    expect(outcomes.filter((o) => o.fn === 'idem' && o.code !== undefined)).toEqual([]);
    const failed = outcomes.filter((o) => o.code !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    // What a client sent before it could know the gateway was gone (the first failure it saw)
    // was in flight on it; nothing sent after that may fail.
    const noticed = new Map<number, number>();
    for (const o of failed) noticed.set(o.client, Math.min(noticed.get(o.client) ?? Infinity, o.endedAt));
    for (const o of failed) {
      expect(o).toMatchObject({ fn: 'once', code: 'GATEWAY_LOST' });
      expect(o.startedAt).toBeLessThan(noticed.get(o.client)!);
      expect(o.startedAt - killedAt).toBeLessThan(500);
      expect(o.endedAt - killedAt).toBeLessThan(1000);
    }
    // No call hung: each ended well within its own time limit.
    expect(Math.max(...outcomes.map((o) => o.endedAt - o.startedAt))).toBeLessThan(5000);
    expect(servingAt - restartedAt).toBeLessThan(2000);
    // Both kinds of client carried calls across the kill.
    for (let i = 0; i < load.length; i++) expect(outcomes.filter((o) => o.client === i && o.endedAt > servingAt && o.code === undefined).length, `client ${i}`).toBeGreaterThan(0);
    await allRegistered([adminA, adminB], 3);
  }, 60_000);

  it('a gateway that stops (SIGTERM) tells its clients and nodes first: idempotent calls move to the other gateway, none fails', async () => {
    const direct = connect([gwA.address, gwB.address]);
    const directUnary = connect([gwA.address, gwB.address], { transport: 'unary' });
    clients.push(direct, directUnary);
    await Promise.all([direct.idem(1), directUnary.idem(1)]);
    const errors: unknown[] = [];
    let calls = 0;
    let stopping = false;
    const worker = async (client: DynamicClient) => {
      while (!stopping) {
        await client.idem(80, { timeout: 8000 }).then(
          () => calls++,
          (err: unknown) => errors.push(err),
        );
      }
    };
    const workers = [direct, directUnary].flatMap((c) => Array.from({ length: 6 }, () => worker(c)));
    await sleep(300);
    const before = nodeLogs.entries.length;
    gwB.kill('SIGTERM');
    await gwB.exited;
    await sleep(300);
    stopping = true;
    await Promise.all(workers);
    expect(errors).toEqual([]);
    expect(calls).toBeGreaterThan(20);
    const told = nodeLogs.entries.slice(before).filter((e) => e.msg === 'the gateway is stopping' && e.gateway === gwB.address);
    expect(told.map((e) => e.nodeId).sort()).toEqual(NODE_IDS);
    expect(await direct.idem(1)).toMatch(/^n[123]$/);
  }, 30_000);
});
