// The gateway's LoadBalancer service over gRPC, driven as a backend or client in another
// language would (test/support/load-balancer.ts), with leases and pick lapses on a fake clock.
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient, connect } from '@easyremote/client';
import type { Gateway, GatewayOptions } from '@easyremote/gateway';
import { FakeClock } from '../packages/gateway/test/support/fake-clock.js';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { ok, RawLoadBalancer } from './support/load-balancer.js';
import { RawNode, spec } from './support/raw.js';
import { PROTOCOL_VERSION } from '@easyremote/protocol';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(options: GatewayOptions = {}): Promise<Gateway> {
  const gw = await startGateway(options);
  cleanups.push(() => gw.stop());
  return gw;
}

function lb(gw: Gateway, token?: string): RawLoadBalancer {
  const c = new RawLoadBalancer(gw.address, token);
  cleanups.push(() => c.close());
  return c;
}

describe('backends: register, report, get, expiry, deregister', () => {
  it('a registered backend is picked with its address; its lease is renewed by ReportLoad and it expires without it', async () => {
    const clock = new FakeClock();
    // heartbeat 1000, lease 3000: leases are checked every 500 ms.
    const gw = await gateway({ clock, heartbeatMs: 1000, leaseMs: 3000 });
    const c = lb(gw);
    const lease = ok(await c.register({ id: 'b1', address: '10.0.0.7', port: 7001, services: ['resize'], capacity: 2, labels: { location: 'eu' } }));
    expect(lease).toEqual({ leaseMs: 3000, reportIntervalMs: 1000, gatewayId: gw.id });
    const pick = ok(await c.get({ service: 'resize', clientId: 'test' }));
    expect(pick).toMatchObject({ id: 'b1', address: '10.0.0.7', port: 7001, kind: 'backend', services: ['resize'], capacity: 2, labels: { location: 'eu' }, pickTtlMs: 1000, inFlight: 1 });
    expect(pick.pickId).toBeGreaterThan(0);
    expect(gw.nodes()).toMatchObject([{ nodeId: 'b1', kind: 'backend', direct: '10.0.0.7:7001', healthy: true }]);

    // Reports keep it alive past the lease; its load is what least_load and the admin API read.
    clock.advance(2000);
    ok(await c.report({ id: 'b1', load: 0.25, inFlight: 1, queued: 0 }));
    clock.advance(2000);
    expect(gw.nodes()[0]).toMatchObject({ healthy: true, load: 0.25 });
    // Silent past the lease: lost at the next check, and no longer picked.
    clock.advance(3600);
    await waitFor('b1 to expire', () => gw.nodes().length === 0);
    expect((await c.get({ service: 'resize' })).error).toMatchObject({ code: 'NO_NODE_AVAILABLE', retryAfterMs: 200 });
    expect((await c.report({ id: 'b1', load: 0.1 })).error).toMatchObject({ code: 'NODE_NOT_FOUND', message: 'no backend "b1" is registered (it may have expired): register it again' });
    // Registering again brings it back.
    ok(await c.register({ id: 'b1', address: '10.0.0.7', port: 7001, services: ['resize'] }));
    expect(ok(await c.get({ service: 'resize' })).id).toBe('b1');
  });

  it('RegisterBackend again updates the registration; Deregister removes it at once', async () => {
    const gw = await gateway();
    const c = lb(gw);
    ok(await c.register({ id: 'b1', address: '127.0.0.1', port: 7001, services: ['a'] }));
    ok(await c.register({ id: 'b1', address: '127.0.0.2', port: 7002, services: ['a', 'b'], capacity: 4 }));
    expect(ok(await c.get({ service: 'b' }))).toMatchObject({ id: 'b1', address: '127.0.0.2', port: 7002, capacity: 4 });
    expect(gw.api.backends()).toMatchObject([{ id: 'b1', kind: 'backend', address: '127.0.0.2:7002', services: ['a', 'b'], picks: 1, openPicks: 1, inFlight: 1 }]);
    expect(ok(await c.deregister('b1'))).toEqual({ removed: true });
    expect(ok(await c.deregister('b1'))).toEqual({ removed: false });
    expect(gw.nodes()).toEqual([]);
    expect((await c.get({ service: 'a' })).error).toMatchObject({ code: 'NO_NODE_AVAILABLE' });
  });

  it('an id taken by a compute node or another principal is refused; ids, addresses, loads and limits are checked and named', async () => {
    const gw = await gateway();
    const node = await startNode(gw.address, (n) => n.register('f', () => 1), { nodeId: 'n1', telemetry: false });
    cleanups.push(() => node.stop());
    const c = lb(gw);
    expect((await c.register({ id: 'n1', services: ['f'] })).error).toMatchObject({ code: 'REGISTRATION_REFUSED' });
    expect((await c.register({ id: 'bad id', services: ['f'] })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^backend id "bad id" is not allowed/) });
    expect((await c.register({ id: 'b', services: [] })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'backend b registers no functions' });
    expect((await c.register({ id: 'b', address: '', services: ['f'] })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'address is empty: name the host clients dial' });
    expect((await c.register({ id: 'b', port: 0, services: ['f'] })).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await c.register({ id: 'b', address: 'h'.repeat(300), services: ['f'] })).error).toMatchObject({ code: 'INVALID_ARGUMENT', limit: { name: 'max_address_bytes', limit: 256 } });
    expect((await c.register({ id: 'b', services: Array.from({ length: 1025 }, (_, i) => `s${i}`) })).error).toMatchObject({ limit: { name: 'max_functions_per_node', limit: 1024, actual: 1025 } });
    expect((await c.register({ id: 'b', services: ['f'], labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) })).error).toMatchObject({ limit: { name: 'max_labels' } });
    expect((await c.register({ id: 'b', services: ['f'], load: 2 })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'load must be a number within 0..1, got 2' });
    expect((await c.register({ id: 'b', services: ['f'], loadBalancingJson: '{"strategy":"nope"}' })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^backend b: function f: unknown strategy "nope"/) });
    ok(await c.register({ id: 'b', services: ['f'] }));
    expect((await c.report({ id: 'b', load: Number.NaN })).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Requests for picks: the same limits as a call's options, and the batch size.
    expect((await c.get({ service: '' })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'BackendRequest.service is empty' });
    expect((await c.get({ service: 'x'.repeat(300) })).error).toMatchObject({ limit: { name: 'max_call_function_name_bytes', actual: 300 } });
    expect((await c.get({ service: 'f', clientId: 'c'.repeat(300) })).error).toMatchObject({ limit: { name: 'max_identifier_bytes' } });
    expect((await c.getMany({ service: 'f', count: 65 })).error).toMatchObject({ limit: { name: 'max_picks_per_request', limit: 64, actual: 65 } });
    expect((await c.get({ service: 'f', strategy: 's'.repeat(300) })).error).toMatchObject({ limit: { name: 'max_option_string_bytes' } });
    expect((await c.get({ service: 'f', strategy: 'nope' })).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^unknown load-balancing strategy "nope"/) });
    expect((await c.get({ service: 'missing' })).error).toMatchObject({ code: 'FUNCTION_NOT_FOUND', message: 'function "missing" is not registered' });
    expect((await c.outcome({ backendId: 'b', service: 'f', latencyMs: -1 })).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await c.outcome({ backendId: 'zz', service: 'f', latencyMs: 1, ok: true })).error).toMatchObject({ code: 'NODE_NOT_FOUND' });
  });
});

describe("a compute node's direct address", () => {
  it('is checked at registration (max_address_bytes, host:port) and handed out in picks', async () => {
    const gw = await gateway();
    const raw = new RawNode(gw.address);
    cleanups.push(() => raw.close());
    const register = async (directAddress: string) => {
      const from = raw.frames.length;
      raw.send({ register: { nodeId: 'n1', token: '', functions: [spec('f')], capabilities: undefined, protocolVersion: PROTOCOL_VERSION, instanceId: 'i', gateways: [], directAddress } });
      return (await raw.next((f) => f.registered !== undefined, 10_000, from)).registered!;
    };
    expect((await register('no-port')).refusal).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'direct_address "no-port" is not host:port (an IPv6 host in brackets, a port from 1 to 65535)' });
    expect((await register(`${'h'.repeat(300)}:1`)).refusal).toMatchObject({ code: 'INVALID_ARGUMENT', limitName: 'max_address_bytes', limit: 256, actual: 302 });
    expect((await register('[::1]:7001')).accepted).toBe(true);
    const c = lb(gw);
    expect(ok(await c.get({ service: 'f' }))).toMatchObject({ id: 'n1', kind: 'node', address: '::1', port: 7001, pickTtlMs: 1000 });
    // Re-registering without one: picks have no address, take no slot, and say so.
    expect((await register('')).accepted).toBe(true);
    // (The first pick still holds its slot: in_flight counts it.)
    expect(ok(await c.get({ service: 'f' }))).toMatchObject({ id: 'n1', address: '', port: 0, pickId: 0, pickTtlMs: 0, inFlight: 1 });
  });
});

describe('picks', () => {
  it('a pick holds a call slot until its outcome, or until it lapses (TTL plus the time limit)', async () => {
    const clock = new FakeClock();
    const gw = await gateway({ clock, defaultTimeoutMs: 5000, leaseMs: 60_000 });
    const c = lb(gw);
    ok(await c.register({ id: 'b1', services: ['f'], capacity: 1 }));
    const first = ok(await c.get({ service: 'f' }));
    // One slot, no queue: the backend is full while the pick is open.
    expect((await c.get({ service: 'f' })).error).toMatchObject({ code: 'OVERLOADED', retryAfterMs: 200 });
    ok(await c.outcome({ backendId: 'b1', service: 'f', pickId: first.pickId, latencyMs: 12, ok: true, keep: true }));
    const second = ok(await c.get({ service: 'f' }));
    expect(gw.api.backends()[0]).toMatchObject({ picks: 2, outcomes: 1, openPicks: 1 });
    // Never reported: released once the pick's TTL (1000) and the time limit (5000) have passed.
    clock.advance(5999);
    expect((await c.get({ service: 'f' })).error).toMatchObject({ code: 'OVERLOADED' });
    clock.advance(1001);
    const third = ok(await c.get({ service: 'f' }));
    expect(third.pickId).toBeGreaterThan(second.pickId);
  });

  it('GetBackends hands out several picks in one round trip, spread by the strategy as calls would be', async () => {
    const gw = await gateway({ functions: { f: { strategy: 'least_connections' } } });
    const c = lb(gw);
    for (const id of ['b1', 'b2', 'b3']) ok(await c.register({ id, services: ['f'], port: 7000 + Number(id[1]) }));
    const picks = ok(await c.getMany({ service: 'f', count: 6 })).picks;
    const per = new Map<string, number>();
    for (const p of picks) per.set(p.id, (per.get(p.id) ?? 0) + 1);
    expect([...per.values()]).toEqual([2, 2, 2]);
    expect(new Set(picks.map((p) => p.pickId)).size).toBe(6);
    // A later pick of a batch that finds no room ends the batch: the picks so far are the answer.
    const gw2 = await gateway();
    const c2 = lb(gw2);
    ok(await c2.register({ id: 'solo', services: ['f'], capacity: 1, queueSize: 1 }));
    expect(ok(await c2.getMany({ service: 'f', count: 5 })).picks).toHaveLength(2);
  });

  it("requirements, the call's strategy and the function's fallback choose among backends as among nodes", async () => {
    const gw = await gateway({ functions: { render: { strategy: 'pick_first', fallbackStrategy: 'round_robin' } } });
    const c = lb(gw);
    ok(await c.register({ id: 'small', services: ['render'], capabilities: { cpuCores: 2, memoryTotalBytes: 0, gpus: [], labels: {}, costPerHour: 0 } }));
    ok(await c.register({ id: 'big', services: ['render'], capabilities: { cpuCores: 2, memoryTotalBytes: 0, gpus: [{ index: 0, model: 'A100', vramTotalBytes: 80 * 2 ** 30 }], labels: {}, costPerHour: 0 } }));
    const ids = async (request: Parameters<RawLoadBalancer['getMany']>[0]) => ok(await c.getMany({ service: 'render', count: 4, ...request })).picks.map((p) => p.id);
    expect(await ids({})).toEqual(['small', 'small', 'small', 'small']);
    expect(await ids({ requirements: { gpuMemory: '>=40GB' } })).toEqual(['big', 'big', 'big', 'big']);
    expect(await ids({ strategy: 'round_robin' })).toEqual(['small', 'big', 'small', 'big']);
    expect((await c.get({ service: 'render', requirements: { gpuMemory: '>=100GB' } })).error).toMatchObject({ code: 'NO_NODE_AVAILABLE', message: expect.stringMatching(/^no node meets the requirements of render/) });
  });

  it("outcome reports change latency_based's choice", async () => {
    const gw = await gateway({ functions: { f: { strategy: 'latency_based' } } });
    const c = lb(gw);
    ok(await c.register({ id: 'fast', services: ['f'], port: 7001 }));
    ok(await c.register({ id: 'slow', services: ['f'], port: 7002 }));
    // With no history both look alike; outcomes teach it: "slow" answers in 400 ms, "fast" in 5 ms.
    for (let i = 0; i < 4; i++) {
      for (const [id, latencyMs] of [['fast', 400], ['slow', 5]] as const) ok(await c.outcome({ backendId: id, service: 'f', latencyMs, ok: true }));
    }
    const before = ok(await c.getMany({ service: 'f', count: 4 })).picks.map((p) => p.id);
    expect(before).toEqual(['slow', 'slow', 'slow', 'slow']);
    for (const p of ok(await c.getMany({ service: 'f', count: 4 })).picks) ok(await c.outcome({ backendId: p.id, service: 'f', pickId: p.pickId, latencyMs: 900, ok: true }));
    for (let i = 0; i < 6; i++) ok(await c.outcome({ backendId: 'slow', service: 'f', latencyMs: 900, ok: true }));
    const after = ok(await c.getMany({ service: 'f', count: 4 })).picks.map((p) => p.id);
    expect(after).toEqual(['fast', 'fast', 'fast', 'fast']);
    expect(gw.api.functions()[0]!.providers.find((p) => p.nodeId === 'slow')!.history.ewmaLatencyMs).toBeGreaterThan(400);
  });

  it('a pick is reported on only by the principal that asked for it, and counts against its limits', async () => {
    const gw = await gateway({
      auth: {
        principals: [
          { name: 'backends', token: 'backend-token', role: 'node', nodeIds: ['b-*'] },
          { name: 'alice', token: 'alice-token', role: 'client', maxConcurrent: 1 },
          { name: 'bob', token: 'bob-token-1', role: 'client', functions: ['other'] },
        ],
      },
    });
    const backend = lb(gw, 'backend-token');
    const alice = lb(gw, 'alice-token');
    const bob = lb(gw, 'bob-token-1');
    // Backends' own RPCs need a node principal whose patterns name the id; picks a client's.
    expect((await lb(gw).register({ id: 'b-1', services: ['f'] })).error).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await alice.register({ id: 'b-1', services: ['f'] })).error).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await backend.register({ id: 'x-1', services: ['f'] })).error).toMatchObject({ code: 'PERMISSION_DENIED', message: 'backends may not register backend id "x-1"' });
    ok(await backend.register({ id: 'b-1', services: ['f'] }));
    expect((await backend.get({ service: 'f' })).error).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await lb(gw).get({ service: 'f' })).error).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await bob.get({ service: 'f' })).error).toMatchObject({ code: 'PERMISSION_DENIED', message: 'bob may not call "f"' });
    const pick = ok(await alice.get({ service: 'f' }));
    expect((await alice.get({ service: 'f' })).error).toMatchObject({ code: 'RATE_LIMITED', limit: { name: 'principal_max_concurrent' } });
    expect((await bob.outcome({ backendId: 'b-1', service: 'f', pickId: pick.pickId, latencyMs: 1, ok: true })).error).toMatchObject({ code: 'PERMISSION_DENIED' });
    ok(await alice.outcome({ backendId: 'b-1', service: 'f', pickId: pick.pickId, latencyMs: 1, ok: true }));
    ok(await alice.get({ service: 'f' }));
    expect((await lb(gw, 'alice-token').report({ id: 'b-1', load: 0 })).error).toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});

describe('backends beside the rest of the gateway', () => {
  it('lookAside.pickTtlMs is checked when the gateway is built, and is what picks carry', async () => {
    const { Gateway } = await import('@easyremote/gateway');
    expect(() => new Gateway({ metrics: false, lookAside: { pickTtlMs: 0 } })).toThrow('gateway lookAside.pickTtlMs must be a whole number of ms from 1 to 2147483647, got 0');
    expect(() => new Gateway({ metrics: false, lookAside: { pickTtlMs: 1.5 } })).toThrow(/got 1\.5$/);
    const gw = await gateway({ lookAside: { pickTtlMs: 250 } });
    ok(await lb(gw).register({ id: 'b1', services: ['f'] }));
    expect(ok(await lb(gw).get({ service: 'f' })).pickTtlMs).toBe(250);
  });

  it('relayed calls never go to a backend; a function only backends serve is refused at once', async () => {
    const gw = await gateway();
    ok(await lb(gw).register({ id: 'b1', services: ['only_backends'] }));
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    const t0 = Date.now();
    await expect(client.only_backends()).rejects.toMatchObject({ code: 'NO_NODE_AVAILABLE', message: expect.stringMatching(/look-aside backend/) });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('the admin API, Admin service and /metrics list backends', async () => {
    const gw = await gateway({ httpPort: 0 });
    const c = lb(gw);
    ok(await c.register({ id: 'b1', address: '::1', port: 7001, services: ['f'] }));
    const pick = ok(await c.get({ service: 'f' }));
    expect(pick).toMatchObject({ address: '::1', port: 7001 });
    const http = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/api/backends`)).json()) as Array<Record<string, unknown>>;
    expect(http).toMatchObject([{ id: 'b1', kind: 'backend', address: '[::1]:7001', openPicks: 1, healthy: true }]);
    const admin = new AdminClient(gw.address);
    cleanups.push(() => admin.close());
    expect((await admin.backends()).map((b) => [b.id, b.address, b.openPicks])).toEqual([['b1', '[::1]:7001', 1]]);
    const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    expect(text).toMatch(/^easyremote_lookaside_backends 1$/m);
    expect(text).toMatch(/^easyremote_lookaside_open_picks 1$/m);
    expect(text).toMatch(/^easyremote_lookaside_picks 1$/m);
    // Backends are nodes to the rest of the admin API.
    expect(((await (await fetch(`http://127.0.0.1:${gw.httpPort}/api/nodes`)).json()) as Array<Record<string, unknown>>)[0]).toMatchObject({ nodeId: 'b1', kind: 'backend' });
  });
});
