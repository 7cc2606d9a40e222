// Health over real processes and real gRPC: leases, ejection, draining, CPU-bound
// handlers, admission, and live telemetry in the node list.
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { ComputeNode } from '@easyremote/node';
import { spawnNode, startGateway, startNode, waitFor, type NodeProcess } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('leases', () => {
  it('SIGSTOP: calls fail over or fail within the lease, and SIGCONT brings the node back', async () => {
    const gw = await startGateway({ heartbeatMs: 200, leaseMs: 1000 });
    const procs = await Promise.all([spawnNode('worker-node', gw.address, 'stop-a'), spawnNode('worker-node', gw.address, 'stop-b')]);
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => client.close(), () => procs.forEach((p) => (p.kill('SIGCONT'), p.kill('SIGKILL'))));
    await waitFor('two nodes', () => gw.nodes().length === 2);

    // Load: idempotent and non-idempotent calls, each long enough to be caught mid-flight.
    const results: Array<{ fn: string; ms: number; node?: string; code?: string }> = [];
    let stopAt = Infinity;
    const loop = async (fn: 'slow_idem' | 'slow_once') => {
      while (Date.now() < stopAt) {
        const t0 = Date.now();
        try {
          const node = await client.call<string>(fn, [300], { timeout: 20_000 });
          results.push({ fn, ms: Date.now() - t0, node });
        } catch (e) {
          results.push({ fn, ms: Date.now() - t0, code: (e as { code: string }).code });
        }
      }
    };
    const load = Promise.all([...Array(4)].map(() => loop('slow_idem')).concat([...Array(4)].map(() => loop('slow_once'))));
    // Stop the node while it holds calls of both kinds.
    const onVictim = (fn: string) => gw.registry.functions.get(fn)?.providers.get('stop-a')?.inFlight ?? 0;
    await waitFor('stop-a to hold calls of both kinds', () => onVictim('slow_idem') > 0 && onVictim('slow_once') > 0, 10_000, 5);
    const victim = procs[0]!;
    victim.kill('SIGSTOP');
    // The load goes on past the lease, so calls also meet the gateway after it dropped the node.
    stopAt = Date.now() + 1900;
    await load;

    // Nothing waited for the 20 s deadline: the lease (1 s) decided. (The lease filter and
    // the failover themselves are router.test.ts's and dispatcher.test.ts's, on fake time.)
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(10_000);
    expect(results.filter((r) => r.fn === 'slow_idem' && r.code)).toEqual([]);
    const lost = results.filter((r) => r.code);
    expect(lost.length).toBeGreaterThan(0);
    expect(new Set(lost.map((r) => r.code))).toEqual(new Set(['NODE_LOST']));
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['stop-b']);

    victim.kill('SIGCONT');
    await waitFor('stop-a to rejoin', () => gw.nodes().some((n) => n.nodeId === 'stop-a'), 10_000);
    const served = new Set<string>();
    for (let i = 0; i < 10; i++) served.add(await client.call<string>('whoami'));
    expect(served).toEqual(new Set(['stop-a', 'stop-b']));
  });
});

describe('fencing', () => {
  it('SIGSTOP with a call running and one queued: both callers get NodeLost at the lease, and after SIGCONT the queued call never runs', async () => {
    const gw = await startGateway({ heartbeatMs: 200, leaseMs: 1000 });
    const proc = await spawnNode('queue-node', gw.address, 'fenced');
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => client.close(), () => (proc.kill('SIGCONT'), proc.kill('SIGKILL')));

    const outcome = (p: Promise<unknown>) => p.then((v) => ({ value: v }), (e: { code: string }) => ({ code: e.code }));
    const first = outcome(client.call('once_queued', ['first', 800], { timeout: 20_000 }));
    await proc.waitForLine(/^started first$/);
    const second = outcome(client.call('once_queued', ['second', 10], { timeout: 20_000 }));
    // Both attempts are on the node: one running, one in its queue.
    await waitFor('the second call to reach the node', () => gw.nodes()[0]?.inFlight === 2, 5000, 5);

    proc.kill('SIGSTOP');
    const t0 = Date.now();
    expect(await first).toEqual({ code: 'NODE_LOST' });
    expect(await second).toEqual({ code: 'NODE_LOST' });
    expect(Date.now() - t0).toBeLessThan(1000 + 700);
    // Stopped past the end of the running call, so on SIGCONT its slot frees at once.
    await sleep(Math.max(0, 1000 - (Date.now() - t0)));

    proc.kill('SIGCONT');
    await waitFor('the node to rejoin', () => gw.nodes().some((n) => n.nodeId === 'fenced'), 10_000);
    expect(await client.call('once_queued', ['third', 10])).toBe('fenced:third');
    await sleep(1500);
    expect(proc.lines.filter((l) => l.startsWith('started'))).toEqual(['started first', 'started third']);
    expect(proc.lines.filter((l) => l === 'registered').length).toBeGreaterThanOrEqual(2);
  });
});

describe('outlier detection', () => {
  it('ejects a failing node for that function only and readmits it after a successful probe', async () => {
    const gw = await startGateway({ outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 600, maxEjectedShare: 0.5 }, slowStartMs: 0 });
    let broken = true;
    const events: string[] = [];
    gw.on('node-event', (e) => events.push(`${e.kind}:${e.nodeId}:${e.functionName}`));
    const a = await startNode(gw.address, (n) => n.register('flaky', () => {
      if (broken) throw new Error('CUDA out of memory');
      return 'a';
    }).register('other', () => 'a-other'), { nodeId: 'node-a', telemetry: false });
    const b = await startNode(gw.address, (n) => n.register('flaky', () => 'b').register('other', () => 'b-other'), { nodeId: 'node-b', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => a.stop(), () => b.stop(), () => client.close());

    const outcomes: string[] = [];
    for (let i = 0; i < 12; i++) outcomes.push(await client.flaky().then((v: string) => v, () => 'error'));
    // Round robin sends every other call to node-a until its third consecutive failure.
    expect(outcomes.filter((o) => o === 'error')).toHaveLength(3);
    expect(outcomes.slice(6)).toEqual(Array(6).fill('b'));
    expect(events).toContain('ejected:node-a:flaky');
    expect(gw.detector.state('node-a', 'flaky')).toBe('open');
    // The same node still serves its other function.
    const others = new Set<string>();
    for (let i = 0; i < 4; i++) others.add(await client.other());
    expect(others).toEqual(new Set(['a-other', 'b-other']));

    broken = false;
    // Past the 600 ms ejection the pair turns half-open: one probe allowed.
    await waitFor('node-a to turn half-open for flaky', () => gw.detector.state('node-a', 'flaky') === 'half_open');
    const after = new Set<string>();
    for (let i = 0; i < 6; i++) after.add(await client.flaky());
    expect(after).toEqual(new Set(['a', 'b']));
    expect(events).toContain('readmitted:node-a:flaky');
    expect(gw.detector.state('node-a', 'flaky')).toBe('closed');
  });
});

describe('draining', () => {
  it.each(['operator', 'node'] as const)('draining a node under load (%s-initiated) finishes every call with zero errors', async (who) => {
    const gw = await startGateway({ slowStartMs: 0 });
    const work = (id: string) => (n: ComputeNode) => n.register('work', async () => (await sleep(80), id), { maxConcurrent: 4, queueSize: 4 });
    const a = await startNode(gw.address, work('a'), { nodeId: 'drain-a', telemetry: false });
    const b = await startNode(gw.address, work('b'), { nodeId: 'drain-b', telemetry: false });
    const client = connect(gw.address);
    const left: string[] = [];
    gw.on('node-left', (s, how) => left.push(`${s.nodeId}:${how}`));
    cleanups.push(() => gw.stop(), () => a.stop(), () => b.stop(), () => client.close());

    const served: Record<string, number> = { a: 0, b: 0 };
    const errors: unknown[] = [];
    let stopping = false;
    const load = Promise.all(
      [...Array(6)].map(async () => {
        while (!stopping) {
          try {
            served[await client.call<string>('work')]!++;
          } catch (e) {
            errors.push(e);
          }
        }
      }),
    );
    // Drain while drain-a has calls in progress.
    await waitFor('drain-a to have served calls and be busy', () => served.a > 0 && a.activeCalls > 0, 10_000, 1);
    const servedByABefore = served.a;
    if (who === 'operator') expect(gw.drainNode('drain-a')).toBe(true);
    else void a.drain();
    await waitFor('drain-a to leave', () => left.includes('drain-a:left'));
    // The load goes on, on drain-b alone, before it stops.
    const servedByB = served.b;
    await waitFor('drain-b to serve more calls', () => served.b >= servedByB + 6);
    stopping = true;
    await load;
    expect(errors).toEqual([]);
    expect(servedByABefore).toBeGreaterThan(0);
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['drain-b']);
    expect(a.activeCalls).toBe(0);
  });
});

describe('CPU-bound handlers', () => {
  let proc: NodeProcess | undefined;
  afterEach(() => proc?.kill('SIGKILL'));

  it('a 3-second CPU-bound handler in worker mode does not get its node evicted; other calls keep completing', async () => {
    const gw = await startGateway({ heartbeatMs: 250, leaseMs: 1000 });
    cleanups.push(() => gw.stop());
    const lost: string[] = [];
    gw.on('node-left', (s) => lost.push(s.nodeId));
    proc = await spawnNode('cpu-node', gw.address, 'cruncher');
    const client = connect(gw.address);
    cleanups.push(() => client.close());

    const burning = client.burn_worker(3000, 'cruncher');
    const quick: number[] = [];
    const until = Date.now() + 2800;
    while (Date.now() < until) {
      const t0 = Date.now();
      expect(await client.quick()).toBe('cruncher');
      quick.push(Date.now() - t0);
      await sleep(100);
    }
    expect(await burning).toBe('cruncher:done');
    expect(lost).toEqual([]);
    // Inline, the burn would hold the first quick call for about 3 s and let through one or two in all.
    expect(quick.length).toBeGreaterThan(5);
    expect(Math.max(...quick)).toBeLessThan(1500);
  });

  it('without worker mode, a handler that blocks past the lease gets its node declared lost (then it rejoins)', async () => {
    const gw = await startGateway({ heartbeatMs: 250, leaseMs: 1000 });
    cleanups.push(() => gw.stop());
    proc = await spawnNode('cpu-node', gw.address, 'blocker');
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    const t0 = Date.now();
    await expect(client.burn_inline(4000)).rejects.toMatchObject({ code: 'NODE_LOST' });
    // Lost at the lease (1 s), well before the handler would have returned.
    expect(Date.now() - t0).toBeLessThan(3800);
    await waitFor('blocker to rejoin', () => gw.nodes().some((n) => n.nodeId === 'blocker'), 10_000);
    expect(await client.quick()).toBe('blocker');
  });
});

describe('admission at the gateway', () => {
  // The rules (queue bound, FIFO, deadlines while waiting) are dispatcher.test.ts's, on fake
  // time; here they are wired to real calls. `single` holds a call until the test releases it.
  it('overfilling every provider gives Overloaded with retry-after; queued calls whose deadline passes get DeadlineExceeded', async () => {
    const gw = await startGateway({ queueSize: 2 });
    let release = () => undefined as void;
    const single = async (hold: boolean) => {
      if (hold) await new Promise<void>((resolve) => (release = resolve));
      return 'ok';
    };
    const node = await startNode(gw.address, (n) => n.register('single', single, { maxConcurrent: 1 }), { nodeId: 'tiny', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => node.stop(), () => client.close());

    const running = client.call('single', [true]);
    await waitFor('the first call to run', () => node.activeCalls === 1);
    // Settled into values at once: the second may fail before the first is awaited.
    const queued = [client.call('single', [false], { timeout: 1500 }), client.call('single', [false], { timeout: 1500 })].map((p) => p.catch((e: unknown) => e));
    await waitFor('two calls queued at the gateway', () => gw.admission.size('single') === 2);
    const refused = await client.call('single', [false]).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'Overloaded', code: 'OVERLOADED' });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    for (const q of queued) expect(await q).toMatchObject({ name: 'DeadlineExceeded' });
    await waitFor('the queue to empty', () => gw.admission.size('single') === 0);
    release();
    expect(await running).toBe('ok');
    // A queued call with time to wait runs when the slot frees up.
    const first = client.call('single', [true]);
    await waitFor('running', () => node.activeCalls === 1);
    const waiting = client.call('single', [false], { timeout: 20_000 });
    await waitFor('the second call queued at the gateway', () => gw.admission.size('single') === 1);
    release();
    expect(await first).toBe('ok');
    expect(await waiting).toBe('ok');
  });
});

describe('telemetry', () => {
  it("the gateway's node list shows live CPU, memory and (empty) GPU figures from systeminformation", async () => {
    const gw = await startGateway({ heartbeatMs: 200 });
    const node = await startNode(gw.address, (n) => n.register('noop', () => null), { nodeId: 'telemetry-node' });
    cleanups.push(() => gw.stop(), () => node.stop());
    await waitFor('a heartbeat with telemetry', () => gw.nodes()[0]?.telemetry !== undefined);
    const [info] = gw.nodes();
    expect(info!.capabilities.cpuCores).toBeGreaterThan(0);
    expect(info!.capabilities.memoryTotalBytes).toBeGreaterThan(0);
    expect(info!.telemetry!.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(info!.telemetry!.cpuPercent).toBeLessThanOrEqual(100);
    expect(info!.telemetry!.memoryUsedBytes).toBeGreaterThan(0);
    expect(info!.telemetry!.memoryTotalBytes).toBe(info!.capabilities.memoryTotalBytes);
    expect(info!.telemetry!.gpus).toEqual(info!.capabilities.gpus.length === 0 ? [] : expect.any(Array));
    expect(info).toMatchObject({ healthy: true, available: expect.any(Boolean), reason: expect.any(String) });
    await waitFor('an RTT from ping/pong', () => gw.nodes()[0]?.rttMs !== undefined);
    expect(gw.nodes()[0]!.rttMs).toBeLessThan(1000);
  });
});
