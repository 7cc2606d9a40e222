// Metrics, cache and admin API over real gRPC and HTTP: call rows in SQLite, the admin API (gRPC and HTTP),
// Prometheus text, alerts with a webhook, and the result cache.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, connect, type DynamicClient } from '@easyremote/client';
import { Gateway } from '@easyremote/gateway';
import type { ComputeNode } from '@easyremote/node';
import { startGateway, startNode, waitFor } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'easyremote-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('metrics, admin API and cache', () => {
  let gw: Gateway;
  let n1: ComputeNode;
  let n2: ComputeNode;
  let client: DynamicClient;
  let admin: AdminClient;
  let counter = 0;
  let computed = 0;
  const webhook: unknown[] = [];
  const hookServer = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      webhook.push(JSON.parse(body));
      res.end('ok');
    });
  });

  beforeAll(async () => {
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/alerts`;
    gw = await startGateway({
      httpPort: 0,
      metrics: { path: join(dir, 'live.db'), flushIntervalMs: 50 },
      cache: { maxBytes: 12_000, maxEntryShare: 0.5 },
      alerts: { intervalMs: 3_600_000, webhookUrl: hookUrl, thresholds: { alertLatencyMs: 20 } },
    });
    const setup = (id: string) => (n: ComputeNode) =>
      n
        .register('add', (a: number, b: number) => a + b)
        .register('fail', () => {
          throw new Error('nope');
        })
        .register('counter', () => ++counter)
        .register('slow', async (ms: number) => (await sleep(ms), id))
        .register('square', async (x: number) => (computed++, await sleep(50), x * x), { cacheable: true, cacheTtl: 1000, version: '1' })
        .register('blob', (tag: string) => (computed++, Buffer.alloc(4000, tag)), { cacheable: true, cacheTtl: 60_000 });
    n1 = await startNode(gw.address, setup('m1'), { nodeId: 'm1', telemetry: false });
    n2 = await startNode(gw.address, setup('m2'), { nodeId: 'm2', telemetry: false });
    client = connect(gw.address);
    admin = new AdminClient(gw.address);
  });

  afterAll(async () => {
    client.close();
    admin.close();
    await n1.stop();
    await n2.stop();
    await gw.stop();
    hookServer.close();
  });

  afterEach(() => {
    computed = 0;
  });

  it('records a row per call with the right node, strategy, outcome and cache flag', async () => {
    await client.add(1, 2);
    await client.add(3, 4);
    await expect(client.fail()).rejects.toMatchObject({ code: 'REMOTE_ERROR' });
    await expect(client.no_such()).rejects.toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    await client.square(3);
    await client.square(3); // a cache hit
    const store = gw.metrics.store!;
    store.flush();
    const rows = store.queryCalls({ limit: 100, order: 'asc' });
    const adds = rows.filter((r) => r.functionName === 'add');
    expect(adds).toHaveLength(2);
    expect(new Set(adds.map((r) => r.nodeId))).toEqual(new Set(['m1', 'm2'])); // round robin
    expect(adds.every((r) => r.strategy === 'round_robin' && r.success && r.errorCode === '' && !r.cached && r.totalMs >= r.execMs)).toBe(true);
    expect(rows.find((r) => r.functionName === 'fail')).toMatchObject({ success: false, errorCode: 'REMOTE_ERROR', strategy: 'round_robin' });
    expect(['m1', 'm2']).toContain(rows.find((r) => r.functionName === 'fail')!.nodeId);
    expect(rows.find((r) => r.functionName === 'no_such')).toMatchObject({ success: false, errorCode: 'FUNCTION_NOT_FOUND', nodeId: '' });
    const squares = rows.filter((r) => r.functionName === 'square');
    expect(squares.map((r) => r.cached)).toEqual([false, true]);
    expect(squares[1]).toMatchObject({ success: true, nodeId: '' });
    expect(squares[0]!.execMs).toBeGreaterThanOrEqual(45);
  });

  it('a non-cacheable counter returns 1, 2, 3', async () => {
    counter = 0;
    expect([await client.counter(), await client.counter(), await client.counter()]).toEqual([1, 2, 3]);
  });

  it('a cacheable pure function computes once for 50 concurrent identical calls', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => client.square(12)));
    expect(results).toEqual(Array(50).fill(144));
    expect(computed).toBe(1);
    // A per-call bypass computes again; invalidation empties the function's entries.
    expect(await client.call('square', [12], { noCache: true })).toBe(144);
    expect(computed).toBe(2);
    expect((await admin.invalidateCache('square')).removed).toBeGreaterThanOrEqual(1);
    await client.square(12);
    expect(computed).toBe(3);
  });

  // The TTL rule is result-cache.test.ts's, on a fake clock; here: the declared TTL reaches the cache.
  it('cached results expire after their TTL', async () => {
    const t0 = Date.now();
    await client.square(5);
    await client.square(5);
    expect(computed).toBe(1);
    await waitFor('the cached square to expire', async () => (await client.square(5), computed === 2), 10_000, 50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
  });

  it('the byte bound evicts the least recently used result', async () => {
    await client.blob('a');
    await client.blob('b');
    await client.blob('a'); // hit: a is now most recent
    expect(computed).toBe(2);
    await client.blob('c'); // 3 × 4 KB + overhead > 12 KB: b goes
    await client.blob('a');
    expect(computed).toBe(3);
    await client.blob('b');
    expect(computed).toBe(4);
    expect(gw.cache.stats().evictions).toBeGreaterThan(0);
  });

  it('the typed admin client lists nodes, functions and statistics', async () => {
    const nodes = await admin.nodes();
    expect(nodes.map((n) => n.nodeId).sort()).toEqual(['m1', 'm2']);
    expect(nodes[0]).toMatchObject({ healthy: true, state: 'active' });
    const fns = await admin.functions();
    const square = fns.find((f) => f.name === 'square')!;
    expect(square.config).toMatchObject({ cacheable: true, cacheTtlMs: 1000, version: '1', strategy: 'round_robin' });
    expect(square.providers.map((p) => p.nodeId).sort()).toEqual(['m1', 'm2']);
    gw.metrics.store!.flush();
    const m = await admin.metrics(60_000);
    expect(m.statistics!.summary.calls).toBeGreaterThan(5);
    expect(m.statistics!.summary.cachedCalls).toBeGreaterThan(0);
    const stats = await admin.functionStats(60_000);
    expect(stats.functions.find((f) => f.functionName === 'add')).toMatchObject({ calls: 2, successRate: 1 });
    expect(stats.strategies.find((s) => s.strategy === 'round_robin')!.calls).toBeGreaterThan(2);
    expect(stats.errors.find((e) => e.code === 'REMOTE_ERROR')!.count).toBe(1);
    const dist = (await admin.nodeStats(60_000)).distribution;
    expect(dist.reduce((a, d) => a + d.share, 0)).toBeCloseTo(1, 5);
    await expect(admin.node('ghost')).rejects.toMatchObject({ name: 'NodeNotFound', code: 'NODE_NOT_FOUND', grpcStatus: grpc.status.NOT_FOUND });
  });

  it('the HTTP API and /metrics answer over real HTTP', async () => {
    const base = `http://127.0.0.1:${gw.httpPort}`;
    const json = async (path: string, init?: RequestInit) => {
      const res = await fetch(base + path, init);
      expect(res.headers.get('content-type')).toContain('application/json');
      return { status: res.status, body: (await res.json()) as any };
    };
    expect((await json('/api/nodes')).body.map((n: { nodeId: string }) => n.nodeId).sort()).toEqual(['m1', 'm2']);
    expect((await json('/api/nodes/m1')).body.nodeId).toBe('m1');
    expect((await json('/api/nodes/ghost')).status).toBe(404);
    expect((await json('/api/functions')).body.some((f: { name: string }) => f.name === 'add')).toBe(true);
    const metrics = (await json('/api/metrics?window_ms=60000')).body;
    expect(metrics.statistics.summary.calls).toBeGreaterThan(0);
    expect(metrics.live.overall.calls).toBeGreaterThan(0);
    expect((await json('/api/stats/functions')).body.functions.length).toBeGreaterThan(0);
    expect((await json('/api/recommendations')).body).toHaveProperty('recommendations');
    expect((await json('/api/alerts')).body).toHaveProperty('active');
    expect((await json('/api/metrics?window_ms=-5')).status).toBe(400);
    expect((await json('/api/nope')).status).toBe(404);

    const text = await (await fetch(`${base}/metrics`)).text();
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.e+-]+|NaN|\+Inf)$/.exec(line);
      expect(m, `unparsable line: ${line}`).not.toBeNull();
      samples.set(m![1]!, Number(m![2]));
    }
    expect(samples.get('easyremote_calls_total{function="add",node="m1",outcome="ok"}')).toBe(1);
    expect(samples.get('easyremote_errors_total{function="fail",code="REMOTE_ERROR"}')).toBe(1);
    expect(samples.get('easyremote_nodes')).toBe(2);
    expect([...samples.keys()].some((k) => k.startsWith('easyremote_execution_seconds_bucket{'))).toBe(true);
  });

  it('raises alerts (queryable, and POSTed to the webhook) and recommends a strategy', async () => {
    await Promise.all([client.slow(60), client.slow(60), client.slow(60)]);
    gw.evaluateAlerts();
    const alerts = await admin.alerts();
    expect(alerts.active.some((a) => a.kind === 'high_latency')).toBe(true);
    await waitFor('the webhook POST', () => webhook.length > 0, 5000);
    expect(webhook[0]).toMatchObject({ kind: 'high_latency' });
    gw.evaluateAlerts(); // still active: seen again, not raised (or posted) again
    await gw.alerts.drain();
    expect(webhook.filter((w) => (w as { kind: string }).kind === 'high_latency')).toHaveLength(1);
    expect((await admin.alerts()).active.find((a) => a.kind === 'high_latency')).toMatchObject({ occurrences: 2 });
  });

  it('drains a node through the HTTP API', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.httpPort}/api/nodes/m2/drain`, { method: 'POST' });
    expect(await res.json()).toEqual({ nodeId: 'm2', draining: true });
    await waitFor('m2 to leave', () => gw.nodes().every((n) => n.nodeId !== 'm2'));
    gw.metrics.store!.flush();
    const kinds = gw.metrics.store!.queryEvents({ nodeId: 'm2', limit: 10 }).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['joined', 'draining', 'left']));
  });
});

describe('the metrics database', () => {
  it('a graceful stop writes every buffered row', async () => {
    const path = join(dir, 'graceful.db');
    const gw = await startGateway({ metrics: { path, flushIntervalMs: 3_600_000 } });
    const node = await startNode(gw.address, (n) => n.register('echo', (x: number) => x), { nodeId: 'g1', telemetry: false });
    const client = connect(gw.address);
    for (let i = 0; i < 40; i++) await client.echo(i);
    client.close();
    await node.stop();
    await gw.stop();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM calls').get()).toEqual({ n: 40 });
    db.close();
  });

  it('a corrupt database file is a clear error at start; metrics can be turned off', async () => {
    const path = join(dir, 'corrupt.db');
    writeFileSync(path, 'this is not a database'.repeat(100));
    expect(() => new Gateway({ port: 0, metrics: { path } })).toThrow(/corrupt\.db.*not a valid SQLite/);
    const gw = await startGateway({ metrics: false, httpPort: 0 });
    const node = await startNode(gw.address, (n) => n.register('echo', (x: number) => x), { nodeId: 'off', telemetry: false });
    const client = connect(gw.address);
    expect(await client.echo(7)).toBe(7);
    // Off means nothing per call: no row, no live figure, no Prometheus count.
    expect(gw.metrics.store).toBeUndefined();
    expect(gw.metrics.live.overall().calls).toBe(0);
    const doc = gw.api.metrics(60_000);
    expect(doc).toMatchObject({ statistics: null, store: { ok: false, disabled: true }, live: { functions: [], nodes: [], distribution: [] } });
    expect(gw.api.nodeStats()).toEqual({ nodes: [], distribution: [] });
    expect(gw.api.functionStats()).toEqual({ functions: [], strategies: [], callers: [], errors: [] });
    const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    expect(text).not.toMatch(/easyremote_(calls_total|errors_total|queue_wait_seconds|execution_seconds|metrics_dropped_rows)/);
    expect(text).toMatch(/^easyremote_nodes 1$/m);
    expect(text).toMatch(/^# TYPE easyremote_cache_hits_total counter$/m);
    client.close();
    await node.stop();
    await gw.stop();
  });
});
