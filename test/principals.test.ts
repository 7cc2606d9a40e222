// Named principals over real gRPC and HTTP: node ids bound to node tokens, functions
// bound to client tokens, operator actions for the admin role only, per-principal limits,
// the caller's name reaching the handler, and the audit trail.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient, connect } from '@easyremote/client';
import { ComputeNode, currentCall } from '@easyremote/node';
import type { EasyRemoteError } from '@easyremote/protocol';
import type { GatewayOptions } from '@easyremote/gateway';
import { spawnNode, startGateway, startNode, waitFor, type NodeProcess } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (t: string) => createHash('sha256').update(t).digest('hex');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const AUTH: GatewayOptions['auth'] = {
  principals: [
    { name: 'gpu-fleet', token: 'gpu-fleet-token', role: 'node', nodeIds: ['gpu-*'] },
    { name: 'cpu-fleet', sha256: sha256('cpu-fleet-token'), role: 'node', nodeIds: ['cpu-*'] },
    { name: 'acme', token: 'acme-client-token', role: 'client', functions: ['train_*', 'whoami', 'slow'], maxConcurrent: 2 },
    { name: 'globex', token: 'globex-client-token', role: 'client' },
    { name: 'burst', token: 'burst-client-token', role: 'client', callsPerSecond: 5 },
    { name: 'ops', sha256: sha256('ops-admin-token'), role: 'admin' },
  ],
};

async function cluster(options: GatewayOptions = {}) {
  const gw = await startGateway({ auth: AUTH, httpPort: 0, startupGraceMs: 0, ...options });
  const node = await startNode(
    gw.address,
    (n) =>
      n
        .register('whoami', () => currentCall().caller)
        .register('train_small', () => 'trained')
        .register('secret', () => 'classified')
        .register('slow', async () => (await sleep(400), 'slow done')),
    { nodeId: 'gpu-1', token: 'gpu-fleet-token', telemetry: false },
  );
  cleanups.push(() => gw.stop(), () => node.stop());
  return { gw, node };
}

function refusal(node: ComputeNode): Promise<EasyRemoteError> {
  return node.start().then(
    () => {
      throw new Error('registered, but should have been refused');
    },
    (e: EasyRemoteError) => e,
  );
}

describe('node principals', () => {
  it('a node token registers only the node ids its principal names, before and after the real node leaves', async () => {
    const gw = await startGateway({ auth: AUTH, startupGraceMs: 0, leaseMs: 1000, heartbeatMs: 250 });
    cleanups.push(() => gw.stop());
    const events: string[] = [];
    gw.on('node-event', (e) => events.push(`${e.kind}:${e.nodeId}:${e.detail}`));
    // The real node, a separate process, holds gpu-7 with the gpu fleet's token.
    let real: NodeProcess | undefined = await spawnNode('ping-node', gw.address, 'gpu-7', { NODE_TOKEN: 'gpu-fleet-token' });
    cleanups.push(() => real?.kill('SIGKILL'));
    // An impostor with a valid token of another fleet cannot take gpu-7, while it lives...
    const impostor = new ComputeNode({ gateway: gw.address, nodeId: 'gpu-7', token: 'cpu-fleet-token', telemetry: false });
    impostor.register('ping', () => 'impostor');
    cleanups.push(() => impostor.stop());
    const err = await refusal(impostor);
    expect(err).toMatchObject({ code: 'PERMISSION_DENIED', grpcStatus: grpc.status.PERMISSION_DENIED });
    expect(err.message).toContain('cpu-fleet may not register node id "gpu-7"');
    // ...nor once it is gone.
    real.kill('SIGKILL');
    real = undefined;
    await waitFor('gpu-7 to be lost', () => !gw.nodes().some((n) => n.nodeId === 'gpu-7'));
    const again = new ComputeNode({ gateway: gw.address, nodeId: 'gpu-7', token: 'cpu-fleet-token', telemetry: false });
    again.register('ping', () => 'impostor');
    cleanups.push(() => again.stop());
    expect((await refusal(again)).code).toBe('PERMISSION_DENIED');
    expect(gw.nodes()).toEqual([]);
    // The refusals are in the audit trail, naming the principal.
    expect(events.filter((e) => e.startsWith('refused:gpu-7:PERMISSION_DENIED (cpu-fleet)'))).toHaveLength(2);
    expect(events.some((e) => e.startsWith('joined:gpu-7:') && e.includes('as gpu-fleet'))).toBe(true);
  });

  it('a token given as its SHA-256 in the configuration is accepted; a client token cannot register a node', async () => {
    const gw = await startGateway({ auth: AUTH, startupGraceMs: 0 });
    cleanups.push(() => gw.stop());
    const cpu = await startNode(gw.address, (n) => n.register('ping', () => 'pong'), { nodeId: 'cpu-3', token: 'cpu-fleet-token', telemetry: false });
    cleanups.push(() => cpu.stop());
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['cpu-3']);
    const wrongRole = new ComputeNode({ gateway: gw.address, nodeId: 'cpu-4', token: 'globex-client-token', telemetry: false });
    wrongRole.register('ping', () => 'pong');
    cleanups.push(() => wrongRole.stop());
    expect((await refusal(wrongRole)).code).toBe('PERMISSION_DENIED');
  });
});

describe('client principals', () => {
  it('the handler sees the principal name, never the token', async () => {
    const { gw } = await cluster();
    for (const [token, name] of [
      ['acme-client-token', 'acme'],
      ['globex-client-token', 'globex'],
      ['ops-admin-token', 'ops'],
    ]) {
      const c = connect(gw.address, { token });
      const perCall = connect(gw.address, { token, transport: 'unary' });
      cleanups.push(() => c.close(), () => perCall.close());
      expect(await c.whoami()).toBe(name);
      expect(await perCall.whoami()).toBe(name);
    }
  });

  it('call rows name the principal: per-caller stats and the Prometheus caller family count each tenant, refusals included', async () => {
    const { gw } = await cluster({ metrics: { path: ':memory:', callerLabel: true } });
    const acme = connect(gw.address, { token: 'acme-client-token' });
    const globex = connect(gw.address, { token: 'globex-client-token', transport: 'unary' });
    const admin = new AdminClient(gw.address, { token: 'ops-admin-token' });
    cleanups.push(() => acme.close(), () => globex.close(), () => admin.close());
    for (let i = 0; i < 3; i++) await acme.train_small();
    await expect(acme.secret()).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await globex.whoami();
    let callers: Array<{ caller: string; calls: number; failures: number }> = [];
    // Rows reach the database on the store's flush timer.
    for (let i = 0; i < 100 && callers.reduce((n, c) => n + c.calls, 0) < 5; i++) {
      await sleep(50);
      callers = (await admin.functionStats(60_000)).callers;
    }
    expect(callers.map(({ caller, calls, failures }) => ({ caller, calls, failures }))).toEqual([
      { caller: 'acme', calls: 4, failures: 1 },
      { caller: 'globex', calls: 1, failures: 0 },
    ]);
    const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`, { headers: { authorization: 'Bearer ops-admin-token' } })).text();
    const family = text.split('\n').filter((l) => l.startsWith('easyremote_caller_calls_total{'));
    expect(family.sort()).toEqual([
      'easyremote_caller_calls_total{caller="acme",outcome="error"} 1',
      'easyremote_caller_calls_total{caller="acme",outcome="ok"} 3',
      'easyremote_caller_calls_total{caller="globex",outcome="ok"} 1',
    ]);
  });

  it('without callerLabel there is no per-caller family', async () => {
    const { gw } = await cluster();
    const acme = connect(gw.address, { token: 'acme-client-token' });
    cleanups.push(() => acme.close());
    await acme.train_small();
    const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`, { headers: { authorization: 'Bearer ops-admin-token' } })).text();
    expect(text).toMatch(/^easyremote_calls_total\{/m);
    expect(text).not.toContain('easyremote_caller_calls_total');
  });

  it('a client principal may call only its functions; a node token may not call at all', async () => {
    const { gw } = await cluster();
    const acme = connect(gw.address, { token: 'acme-client-token' });
    const node = connect(gw.address, { token: 'gpu-fleet-token' });
    cleanups.push(() => acme.close(), () => node.close());
    expect(await acme.train_small()).toBe('trained');
    await expect(acme.secret()).rejects.toMatchObject({ code: 'PERMISSION_DENIED', message: 'acme may not call "secret"' });
    await expect(node.whoami()).rejects.toMatchObject({ code: 'PERMISSION_DENIED', grpcStatus: grpc.status.PERMISSION_DENIED });
  });

  it('a principal limited to 2 concurrent calls gets RATE_LIMITED on the third while another principal proceeds', async () => {
    const { gw } = await cluster();
    const acme = connect(gw.address, { token: 'acme-client-token' });
    const globex = connect(gw.address, { token: 'globex-client-token' });
    cleanups.push(() => acme.close(), () => globex.close());
    const running = [acme.call('slow'), acme.call('slow')];
    await sleep(50);
    const third = await acme.call('slow').then(
      () => undefined,
      (e: EasyRemoteError) => e,
    );
    expect(third).toMatchObject({ code: 'RATE_LIMITED', grpcStatus: grpc.status.RESOURCE_EXHAUSTED, retryable: true, limit: { name: 'principal_max_concurrent', limit: 2 } });
    expect(third!.retryAfterMs).toBeGreaterThan(0);
    // Another tenant is unaffected, at the same moment.
    expect(await Promise.all([globex.call('slow'), globex.call('slow'), globex.call('slow')])).toEqual(['slow done', 'slow done', 'slow done']);
    expect(await Promise.all(running)).toEqual(['slow done', 'slow done']);
    // Slots come back as calls finish.
    expect(await acme.call('slow')).toBe('slow done');
  });

  it('a principal limited to 5 calls per second is refused past its burst, with a retry-after', async () => {
    const { gw } = await cluster();
    const burst = connect(gw.address, { token: 'burst-client-token' });
    cleanups.push(() => burst.close());
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => burst.call('whoami').then(String, (e: EasyRemoteError) => e.code)));
    expect(outcomes.filter((o) => o === 'burst')).toHaveLength(5);
    expect(outcomes.filter((o) => o === 'RATE_LIMITED')).toHaveLength(3);
    await sleep(400);
    expect(await burst.call('whoami')).toBe('burst');
  });
});

function http(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('operator actions need the admin role', () => {
  it('a client principal can read the admin API but cannot drain or invalidate, over gRPC and HTTP; the admin can, and it is audited', async () => {
    const { gw } = await cluster();
    const events: string[] = [];
    gw.on('node-event', (e) => events.push(`${e.kind}:${e.nodeId}:${e.functionName}:${e.detail}`));
    const client = new AdminClient(gw.address, { token: 'globex-client-token' });
    const admin = new AdminClient(gw.address, { token: 'ops-admin-token' });
    cleanups.push(() => client.close(), () => admin.close());
    expect((await client.nodes()).map((n) => n.nodeId)).toEqual(['gpu-1']);
    await expect(client.drain('gpu-1')).rejects.toMatchObject({ code: 'PERMISSION_DENIED', message: 'globex may not drain nodes: it needs the admin role' });
    await expect(client.invalidateCache('whoami')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const port = gw.httpPort;
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await http(port, 'GET', '/api/nodes', bearer('globex-client-token'))).status).toBe(200);
    expect((await http(port, 'POST', '/api/nodes/gpu-1/drain', bearer('globex-client-token'))).status).toBe(403);
    expect((await http(port, 'POST', '/api/cache/invalidate?function=whoami', bearer('globex-client-token'))).status).toBe(403);
    expect((await http(port, 'GET', '/api/nodes')).status).toBe(401);
    // A page elsewhere cannot make an operator's browser act, even with the operator's credentials.
    const crossSite = await http(port, 'POST', '/api/cache/invalidate?function=whoami', { ...bearer('ops-admin-token'), origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body)).toMatchObject({ error: 'PERMISSION_DENIED' });
    const invalidated = await http(port, 'POST', '/api/cache/invalidate?function=whoami', { ...bearer('ops-admin-token'), origin: `http://127.0.0.1:${port}` });
    expect(invalidated.status).toBe(200);
    expect(await admin.drain('gpu-1')).toEqual({ nodeId: 'gpu-1', draining: true });
    expect(events).toContain('cache-invalidated::whoami:by ops: 0 result(s) removed');
    expect(events).toContain('draining:gpu-1::operator ops');
  });
});
