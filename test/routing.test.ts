// Routing over real gRPC: per-call strategy overrides, hard requirements, smart_adaptive
// learning, affinity, budgets, configuration precedence and conflicts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import { loadGatewayConfig, type GatewayOptions } from '@easyremote/gateway';
import { ComputeNode, StaticTelemetryProvider, type RemoteOptions } from '@easyremote/node';
import { startGateway, startNode } from './support/cluster.js';
import { captureLogs } from './support/log-capture.js';

const GB = 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cluster(options: GatewayOptions, nodes: Array<{ id: string; gpuGb?: number; cores?: number; fns: (id: string) => (n: ComputeNode) => void; labels?: Record<string, string> }>) {
  const gw = await startGateway({ slowStartMs: 0, ...options });
  cleanups.push(() => gw.stop());
  const started: ComputeNode[] = [];
  for (const spec of nodes) {
    const telemetry = new StaticTelemetryProvider(
      { cpuCores: spec.cores ?? 8, memoryTotalBytes: 64 * GB, gpus: spec.gpuGb ? [{ index: 0, model: 'RTX', vramTotalBytes: spec.gpuGb * GB }] : [] },
      { cpuPercent: 10, memoryUsedBytes: 8 * GB, memoryTotalBytes: 64 * GB, gpus: spec.gpuGb ? [{ index: 0, utilizationPercent: 5, vramUsedBytes: 1 * GB, vramTotalBytes: spec.gpuGb * GB }] : [] },
    );
    const node = await startNode(gw.address, spec.fns(spec.id), { nodeId: spec.id, telemetry, labels: spec.labels });
    started.push(node);
    cleanups.push(() => node.stop());
  }
  const client = connect(gw.address);
  cleanups.push(() => client.close());
  return { gw, nodes: started, client };
}

const whoami = (options: RemoteOptions = {}) => (id: string) => (n: ComputeNode) => n.register('who', () => id, options);

async function tally(_client: DynamicClient, n: number, call: () => PromiseLike<string>) {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = await call();
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

describe('strategy selection', () => {
  it('ships smart_adaptive as the default strategy (chosen from bench/strategies)', async () => {
    const { Gateway } = await import('@easyremote/gateway');
    const gw = new Gateway({ port: 0, metrics: false });
    await gw.start();
    const node = await startNode(gw.address, whoami()('solo'), { nodeId: 'solo', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => node.stop(), () => client.close());
    expect(await client.who()).toBe('solo');
    expect(gw.api.functions().find((f) => f.name === 'who')!.config.strategy).toBe('smart_adaptive');
  });

  it('a per-call strategy override takes effect (and is recorded)', async () => {
    const { gw, client } = await cluster({}, [{ id: 'a', fns: whoami() }, { id: 'b', fns: whoami() }, { id: 'c', fns: whoami() }]);
    expect(Object.keys(await tally(client, 9, () => client.who()))).toHaveLength(3); // round robin by default
    const pinned = await tally(client, 9, () => client.call('who', [], { strategy: 'pick_first' }));
    expect(Object.values(pinned)).toEqual([9]);
    gw.metrics.store!.flush();
    const strategies = gw.metrics.store!.queryCalls({ limit: 100 }).map((r) => r.strategy);
    expect(strategies.filter((s) => s === 'pick_first')).toHaveLength(9);
    await expect(client.call('who', [], { strategy: 'no_such_strategy' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/unknown load-balancing strategy "no_such_strategy"/) });
  });

  it('the fallback strategy runs when the strategy finds no node; without one the caller is told which', async () => {
    const lb = { strategy: 'latency_based', fallbackStrategy: 'pick_first' };
    const { gw, client } = await cluster({}, [{ id: 'a', fns: whoami({ loadBalancing: lb }) }, { id: 'b', fns: whoami({ loadBalancing: lb }) }]);
    // maxLatency far below any node's latency: latency_based finds none, pick_first answers.
    expect(await tally(client, 4, () => client.call('who', [], { maxLatency: 1e-6 }))).toEqual({ a: 4 });
    gw.metrics.store!.flush();
    expect(gw.metrics.store!.queryCalls({ limit: 4 }).map((r) => r.strategy)).toEqual(Array(4).fill('pick_first'));
    const err = await client.call('who', [], { maxLatency: 1e-6, fallbackStrategy: 'latency_based' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'NoNodeAvailable', message: expect.stringMatching(/strategy latency_based and fallback latency_based found no node for who among 2/) });
  });

  it('consistent_hash keeps an affinity key on one node', async () => {
    const { client } = await cluster({}, [{ id: 'a', fns: whoami({ loadBalancing: 'consistent_hash' }) }, { id: 'b', fns: whoami({ loadBalancing: 'consistent_hash' }) }, { id: 'c', fns: whoami({ loadBalancing: 'consistent_hash' }) }]);
    for (const key of ['machine-1', 'machine-2', 'machine-3', 'machine-4']) {
      const counts = await tally(client, 6, () => client.call('who', [], { affinityKey: key }));
      expect(Object.values(counts)).toEqual([6]);
    }
    const viaMetadata = await tally(client, 6, () => client.call('who', [], { metadata: { 'x-easyremote-affinity': 'machine-9' } }));
    expect(Object.values(viaMetadata)).toEqual([6]);
  });

  it('cost_aware refuses with BudgetExceeded when no node fits the budget', async () => {
    const { client } = await cluster({}, [
      { id: 'cheap', fns: whoami({ loadBalancing: 'cost_aware', costPerHour: 3600 }) },
      { id: 'dear', fns: whoami({ loadBalancing: 'cost_aware', costPerHour: 36000 }) },
    ]);
    expect(await client.who()).toBe('cheap');
    await expect(client.call('who', [], { maxCost: 1e-9 })).rejects.toMatchObject({ name: 'BudgetExceeded', code: 'BUDGET_EXCEEDED' });
  });
});

describe('requirements', () => {
  it('routes a function only to nodes that meet its declared requirements', async () => {
    const train = (id: string) => (n: ComputeNode) => n.register('train', () => id, { requirements: { gpuMemory: '>=16GB' } });
    const { client } = await cluster({}, [
      { id: 'rtx-4090', gpuGb: 24, fns: train },
      { id: 'gtx-1080', gpuGb: 8, fns: train },
      { id: 'cpu-box', fns: train },
    ]);
    expect(await tally(client, 12, () => client.train())).toEqual({ 'rtx-4090': 12 });
    const err = await client.call('train', [], { requirements: { gpuMemory: '>=48GB' } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'NoNodeAvailable' });
    expect((err as Error).message).toMatch(/gpuMemory >=48GB excluded 3 of 3 nodes/);
    await expect(client.call('train', [], { requirements: { gpuMemory: 'lots' } })).rejects.toMatchObject({ name: 'InvalidArgument', message: expect.stringContaining('lots') });
  });

  it('refuses a node that declares a malformed requirement, quoting it', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = new ComputeNode({ gateway: gw.address, nodeId: 'bad-req', telemetry: false });
    node.register('train', () => 1, { requirements: { cpuCores: '>= many' } });
    await expect(node.start()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('>= many') });
    expect(gw.nodes()).toEqual([]);
  });
});

describe('smart_adaptive', () => {
  it('shifts traffic away from a node that becomes slow', async () => {
    const delays: Record<string, number> = { fast1: 5, fast2: 5, turns: 5 };
    const infer = (id: string) => (n: ComputeNode) => n.register('infer', async () => (await sleep(delays[id]!), id), { loadBalancing: 'smart_adaptive' });
    const { client } = await cluster({}, [{ id: 'fast1', fns: infer }, { id: 'fast2', fns: infer }, { id: 'turns', fns: infer }]);
    // While fast it gets a share. On a loaded machine one unlucky early sample can make it
    // look slow for a while; what matters is that it is used, so look over up to 240 calls.
    const before: Record<string, number> = {};
    for (let round = 0; round < 8 && (before.turns ?? 0) <= 3; round++) {
      for (const [id, n] of Object.entries(await tally(client, 30, () => client.infer()))) before[id] = (before[id] ?? 0) + n;
    }
    expect(before.turns ?? 0).toBeGreaterThan(3); // it was used while fast
    delays.turns = 150; // 30× slower: far beyond timer jitter on a loaded machine
    await tally(client, 40, () => client.infer()); // learning period
    const after = await tally(client, 60, () => client.infer());
    expect(after.turns ?? 0).toBeLessThanOrEqual(9); // ≤ 15%: exploration only (it had a third)
  }, 30_000);
});

describe('configuration precedence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easyremote-config-'));

  it('gateway config file overrides the node declaration; call options override both', async () => {
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ functions: { who: { strategy: 'pick_first' } } }));
    const config = loadGatewayConfig(file);
    const { client } = await cluster(config, [{ id: 'a', fns: whoami({ loadBalancing: 'round_robin' }) }, { id: 'b', fns: whoami({ loadBalancing: 'round_robin' }) }]);
    expect(Object.values(await tally(client, 6, () => client.who()))).toEqual([6]);
    expect(Object.keys(await tally(client, 6, () => client.call('who', [], { strategy: 'round_robin' })))).toHaveLength(2);
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(() => loadGatewayConfig(file)).toThrow(/unknown field\(s\) prot/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('two nodes declaring different configs: the first registered wins, with a warning', async () => {
    const { entries, logger } = captureLogs();
    const { client } = await cluster({ logger }, [{ id: 'first', fns: whoami({ loadBalancing: 'pick_first' }) }, { id: 'second', fns: whoami({ loadBalancing: 'round_robin' }) }]);
    expect(entries.some((e) => e.level === 'warn' && e.function === 'who' && /second declare who differently from first; first's declaration is used/.test(e.msg))).toBe(true);
    expect(await tally(client, 4, () => client.who())).toEqual({ first: 4 });
  });
});
