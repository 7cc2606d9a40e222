// Look-aside mode with several gateways (docs/look-aside.md, "With several gateways"):
// picks are asked of the gateway the set chooses and of another when it cannot be
// reached, each pick's outcome goes back to the gateway that gave it, and a gateway
// without the LoadBalancer service is passed over. And a node's direct port speaks the
// failover protocol as a gateway does (SessionFunction, the easyremote-idempotent header,
// IDEMPOTENCY_MISMATCH), on a session and on Call / CallStream.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { currentCall, type ComputeNode } from '@easyremote/node';
import { encodeArgs, LoadBalancerService } from '@easyremote/protocol';
import { freePort, startGateway, startNode, waitFor } from './support/cluster.js';
import { idempotencyRpc } from './support/idempotency-rpc.js';
import { RawSession } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(): Promise<Gateway> {
  const gw = await startGateway({ startupGraceMs: 0 });
  cleanups.push(() => gw.stop());
  return gw;
}

/** A node linked to every gateway given, serving `who` (its id) and `count` directly too. */
async function node(gateways: Gateway[], nodeId: string): Promise<ComputeNode> {
  const n = await startNode(
    gateways[0]!.address,
    (n) =>
      n.register('who', () => currentCall().nodeId).register('count', async function* (k: number) {
        for (let i = 0; i < k; i++) yield i;
      }),
    { nodeId, telemetry: false, gateways: gateways.slice(1).map((g) => g.address), direct: { listen: '127.0.0.1:0' } },
  );
  cleanups.push(() => n.stop());
  // Registered on every gateway before the test asks any of them for picks.
  await waitFor(`${nodeId} on every gateway`, () => gateways.every((g) => g.registry.sessions.has(nodeId)));
  return n;
}

function client(addresses: string[]): DynamicClient {
  const c = connect(addresses, { mode: 'look-aside' });
  cleanups.push(() => c.close());
  return c;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

/** Picks and outcomes a gateway counted for a node (its /api/backends row). */
const figures = (gw: Gateway, nodeId: string) => {
  const row = gw.api.backends().find((b) => b.id === nodeId);
  return { picks: row?.picks ?? 0, outcomes: row?.outcomes ?? 0 };
};
const gatewayCalls = (gw: Gateway) => gw.metrics.live.overall().calls;

describe('a look-aside client with several gateways', () => {
  it('asks either gateway for picks and reports each outcome to the gateway that gave the pick (unary and stream)', async () => {
    const a = await gateway();
    const b = await gateway();
    await node([a, b], 'n1');
    const c = client([a.address, b.address]);
    // Calls with different affinity keys ask separately (one pick pool each), so both gateways are asked.
    const keys = Array.from({ length: 24 }, (_, i) => `k${i}`);
    expect(await Promise.all(keys.map((k) => c.with({ affinityKey: k }).who()))).toEqual(keys.map(() => 'n1'));
    expect(await collect(c.with({ affinityKey: 'stream' }).count(3))).toEqual([0, 1, 2]);
    await waitFor('every outcome reported', () => figures(a, 'n1').outcomes + figures(b, 'n1').outcomes === 25);
    const [fa, fb] = [figures(a, 'n1'), figures(b, 'n1')];
    expect(fa.picks + fb.picks).toBe(25);
    expect(fa.picks).toBeGreaterThan(0);
    expect(fb.picks).toBeGreaterThan(0);
    // Each gateway heard the outcomes of its own picks, and relayed nothing.
    expect(fa.outcomes).toBe(fa.picks);
    expect(fb.outcomes).toBe(fb.picks);
    expect(gatewayCalls(a) + gatewayCalls(b)).toBe(0);
  });

  it('a gateway that cannot be reached is passed over: the picks come from another, at once (unary and stream)', async () => {
    const b = await gateway();
    await node([b], 'n2');
    const dead = `127.0.0.1:${await freePort()}`;
    const c = client([dead, b.address]);
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const t0 = Date.now();
    expect(await Promise.all(keys.map((k) => c.with({ affinityKey: k }).who()))).toEqual(keys.map(() => 'n2'));
    expect(await collect(c.with({ affinityKey: 'stream' }).count(2))).toEqual([0, 1]);
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitFor('the outcomes', () => figures(b, 'n2').outcomes === 13);
    expect(figures(b, 'n2').picks).toBe(13);
    expect(gatewayCalls(b)).toBe(0);
  });

  it('a gateway stopped under the client: later calls get their picks from the other (unary and stream)', async () => {
    const a = await gateway();
    const b = await gateway();
    await node([a, b], 'n3');
    const c = client([a.address, b.address]);
    expect(await c.who()).toBe('n3');
    await a.stop();
    const before = figures(b, 'n3').picks;
    const keys = Array.from({ length: 8 }, (_, i) => `after${i}`);
    expect(await Promise.all(keys.map((k) => c.with({ affinityKey: k }).who()))).toEqual(keys.map(() => 'n3'));
    expect(await collect(c.with({ affinityKey: 'stream-after' }).count(2))).toEqual([0, 1]);
    expect(figures(b, 'n3').picks - before).toBe(9);
    expect(gatewayCalls(b)).toBe(0);
  });

  it('a gateway without the LoadBalancer service (UNIMPLEMENTED) is asked once and then passed over', async () => {
    const b = await gateway();
    await node([b], 'n4');
    // An older gateway, as far as look-aside goes: its LoadBalancer answers UNIMPLEMENTED.
    let asked = 0;
    const old = new grpc.Server();
    const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
      asked++;
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'no LoadBalancer here' });
    };
    old.addService(LoadBalancerService, { getBackends: unimplemented, getBackend: unimplemented, reportOutcome: unimplemented, registerBackend: unimplemented, reportLoad: unimplemented, deregister: unimplemented });
    const port = await new Promise<number>((resolve, reject) => old.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    cleanups.push(() => old.forceShutdown());
    const c = client([`127.0.0.1:${port}`, b.address]);
    // Twenty pick pools asking at once: the old gateway is chosen for some of them (1 in 2 each) until it is known.
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    expect(await Promise.all(keys.map((k) => c.with({ affinityKey: k }).who()))).toEqual(keys.map(() => 'n4'));
    expect(asked).toBeGreaterThan(0);
    const known = asked;
    expect(await Promise.all(keys.map((k) => c.with({ affinityKey: `again-${k}` }).who()))).toEqual(keys.map(() => 'n4'));
    expect(asked).toBe(known);
    expect(gatewayCalls(b)).toBe(0);
  });
});

describe("a node's direct port and idempotency, as a gateway's", () => {
  async function idempotencyNode(): Promise<ComputeNode> {
    const gw = await gateway();
    const n = await startNode(
      gw.address,
      (n) => {
        n.register('idem', (x: number) => x + 1, { idempotent: true });
        n.register('once', () => 'ran');
        // What the handler is shown of its caller's metadata: the assumption header never.
        n.register('keys', () => Object.keys(currentCall().metadata).sort(), { idempotent: true });
      },
      { nodeId: 'idem-node', telemetry: false, direct: { listen: '127.0.0.1:0' } },
    );
    cleanups.push(() => n.stop());
    return n;
  }

  it('a session is told SessionFunction once per function, and a wrong assumption is refused unrun', async () => {
    const n = await idempotencyNode();
    const s = new RawSession(n.directAddress);
    cleanups.push(() => s.close());
    s.send({ call: { callId: 1, function: 'idem', args: encodeArgs([1]), assumeIdempotent: true } });
    s.send({ call: { callId: 2, function: 'once', args: encodeArgs([]) } });
    await s.until('two results', () => s.frames.filter((f) => f.result).length === 2);
    s.send({ call: { callId: 3, function: 'once', args: encodeArgs([]), assumeIdempotent: true } });
    await s.until('call 3 refused', () => s.frames.some((f) => f.error?.callId === 3));
    expect(s.frames.filter((f) => f.functionInfo).map((f) => f.functionInfo)).toEqual([
      { function: 'idem', idempotent: true },
      { function: 'once', idempotent: false },
    ]);
    const kinds = s.frames.map((f) => (f.functionInfo ? `info:${f.functionInfo.function}` : f.result ? `result:${f.result.callId}` : f.error ? `error:${f.error.callId}` : 'other'));
    expect(kinds.indexOf('info:idem')).toBeLessThan(kinds.indexOf('result:1'));
    expect(kinds.indexOf('info:once')).toBeLessThan(kinds.indexOf('result:2'));
    expect(s.frames.find((f) => f.error?.callId === 3)!.error!.error).toMatchObject({
      code: 'IDEMPOTENCY_MISMATCH',
      retryable: true,
      message: 'once is not idempotent on node idem-node; the call was not run: send it again without assuming it is',
    });
  });

  it('Call and CallStream answer with the easyremote-idempotent header, refuse a wrong assumption, and keep the header from the handler', async () => {
    const n = await idempotencyNode();
    const raw = new grpc.Client(n.directAddress, grpc.credentials.createInsecure());
    cleanups.push(() => raw.close());
    const rpc = (method: 'Call' | 'CallStream', fn: string, assume: boolean) => idempotencyRpc(raw, method, { function: fn, args: encodeArgs(fn === 'idem' ? [2] : []), options: undefined }, assume);
    for (const method of ['Call', 'CallStream'] as const) {
      expect(await rpc(method, 'idem', true)).toEqual({ header: '1', status: grpc.status.OK, code: undefined });
      expect(await rpc(method, 'once', false)).toEqual({ header: '0', status: grpc.status.OK, code: undefined });
      expect(await rpc(method, 'once', true)).toEqual({ header: '0', status: grpc.status.FAILED_PRECONDITION, code: 'IDEMPOTENCY_MISMATCH' });
      expect(await rpc(method, 'nope', false)).toMatchObject({ header: undefined, code: 'FUNCTION_NOT_FOUND' });
    }
    // The assumption travels as a header (per call) or a frame field (session); neither reaches the handler.
    for (const transport of ['unary', 'session'] as const) {
      const direct = connect(n.directAddress, { transport });
      cleanups.push(() => direct.close());
      expect(await direct.idem(1)).toBe(2);
      expect(await direct.idem(2)).toBe(3);
      expect(await direct.call('keys', [], { metadata: { 'x-easyremote-assume-idempotent': '1', 'x-app': 'a' } })).toEqual(['x-app']);
    }
  });
});
