// Provider gaps: a function whose node is restarting, or whose gateway just restarted,
// makes its callers wait for the node instead of failing; a function that never comes
// back fails after the gap window, and an unknown one fails at once after the grace.
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import { freePort, spawnNode, startGateway, startNode } from './support/cluster.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Timed {
  value?: unknown;
  error?: { code?: string; message?: string };
  ms: number;
}

async function timed(call: () => PromiseLike<unknown>): Promise<Timed> {
  const t0 = Date.now();
  try {
    return { value: await call(), ms: Date.now() - t0 };
  } catch (error) {
    return { error: error as Timed['error'], ms: Date.now() - t0 };
  }
}

function client(address: string): DynamicClient {
  const c = connect(address);
  cleanups.push(() => c.close());
  return c;
}

describe('provider gaps', () => {
  it('a node process killed and restarted under the same id: calls made meanwhile wait for it, and none fails', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const first = await spawnNode('ping-node', gw.address, 'pinger');
    cleanups.push(() => first.kill('SIGKILL'));
    const c = client(gw.address);
    for (let i = 0; i < 10; i++) expect(await c.ping()).toBe('pong:pinger');

    // Killed between calls (a call in flight on a killed node is NODE_LOST: not this test's point).
    const left = once(gw, 'node-left');
    first.kill('SIGKILL');
    await left;
    expect(gw.nodes()).toEqual([]);

    // A caller that keeps calling, one call after another, and a burst, all during the gap.
    let calling = true;
    const loop: Timed[] = [];
    const caller = (async () => {
      while (calling) loop.push(await timed(() => c.ping()));
    })();
    const burst = Promise.all(Array.from({ length: 10 }, () => timed(() => c.ping())));
    await sleep(300);
    const second = await spawnNode('ping-node', gw.address, 'pinger');
    cleanups.push(() => second.kill('SIGKILL'));
    const waited = await burst;
    while (loop.length < 5) await sleep(20);
    calling = false;
    await caller;

    for (const o of [...waited, ...loop]) expect(o).toMatchObject({ value: 'pong:pinger' });
    // They waited for the restart (at least the 300 ms before it began), within the gap window (10 s by default).
    for (const o of waited) expect(o.ms).toBeGreaterThanOrEqual(250);
    expect(Math.max(...waited.map((o) => o.ms), loop[0]!.ms)).toBeLessThan(10_000);
  }, 40_000);

  it('after a gateway restart on the same port, calls made at once wait for nodes to re-register instead of FUNCTION_NOT_FOUND', async () => {
    const port = await freePort();
    let gw = await startGateway({ port });
    // The node reconnects 0.5-1 s after each failed try: well after the calls below are made.
    const node = await startNode(gw.address, (n) => n.register('ping', () => 'pong'), { nodeId: 'returning', telemetry: false, backoff: { initialMs: 1000, maxMs: 1000 } });
    cleanups.push(() => node.stop());
    expect(await client(gw.address).ping()).toBe('pong');

    await gw.stop();
    gw = await startGateway({ port });
    cleanups.push(() => gw.stop());
    const registeredWhenCalled = gw.registry.functions.has('ping');
    const fresh = client(gw.address);
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => timed(() => fresh.ping())));
    expect(registeredWhenCalled).toBe(false);
    for (const o of outcomes) expect(o).toMatchObject({ value: 'pong' });
    // Within the startup grace (the lease, 3 s by default).
    for (const o of outcomes) expect(o.ms).toBeLessThan(3_000 + 1_000);
  }, 30_000);

  it('a function whose provider never comes back fails NO_NODE_AVAILABLE after providerGapMs, then is unknown', async () => {
    const gw = await startGateway({ providerGapMs: 1000, startupGraceMs: 0 });
    cleanups.push(() => gw.stop());
    const node = await startNode(gw.address, (n) => n.register('vanish', () => 'here'), { nodeId: 'vanishing', telemetry: false });
    const c = client(gw.address);
    expect(await c.vanish()).toBe('here');
    const left = once(gw, 'node-left');
    await node.stop();
    await left;

    const during = await timed(() => c.vanish());
    expect(during.error).toMatchObject({ code: 'NO_NODE_AVAILABLE' });
    expect(during.ms).toBeGreaterThanOrEqual(900);
    expect(during.ms).toBeLessThan(5_000);
    // Past the gap window the entry is forgotten: the function is unknown, at once.
    await sleep(500);
    const after = await timed(() => c.vanish());
    expect(after.error).toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    expect(after.ms).toBeLessThan(500);
  });

  it('a truly unknown function waits out the startup grace, and after it fails FUNCTION_NOT_FOUND at once', async () => {
    const gw = await startGateway({ startupGraceMs: 800 });
    cleanups.push(() => gw.stop());
    const c = client(gw.address);
    const inGrace = await timed(() => c.call('never_registered'));
    expect(inGrace.error).toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    expect(inGrace.ms).toBeGreaterThanOrEqual(300);
    expect(inGrace.ms).toBeLessThan(5_000);
    const after = await timed(() => c.call('never_registered'));
    expect(after.error).toMatchObject({ code: 'FUNCTION_NOT_FOUND', message: expect.stringMatching(/"never_registered" is not registered/) });
    expect(after.ms).toBeLessThan(500);
  });
});
