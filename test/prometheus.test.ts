// /metrics on a real gateway: easyremote_node_up follows a node from routable to draining
// (0 while it finishes its call) to gone (no series), and the process families are there.
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { ComputeNode } from '@easyremote/node';
import { startGateway, startNode, waitFor } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('/metrics', () => {
  it('easyremote_node_up is 1 per routable node, 0 while a node drains, and absent once it has left; process families are shown', async () => {
    const gw = await startGateway({ httpPort: 0, startupGraceMs: 0 });
    const serve = (n: ComputeNode) => n.register('slow', async (ms: number) => (await sleep(ms), 'done'));
    const a = await startNode(gw.address, serve, { nodeId: 'a', telemetry: false });
    const b = await startNode(gw.address, serve, { nodeId: 'b', telemetry: false });
    const client = connect(gw.address);
    cleanups.push(() => gw.stop(), () => a.stop(), () => b.stop(), () => client.close());
    const scrape = async () => (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    const up = (text: string) => [...text.matchAll(/^easyremote_node_up\{node="([^"]+)"\} (\d)$/gm)].map((m) => `${m[1]}=${m[2]}`).sort();

    let text = await scrape();
    expect(text).toMatch(/^# HELP easyremote_node_up 1 while the node is connected and routable/m);
    expect(text).toMatch(/^# TYPE easyremote_node_up gauge$/m);
    expect(up(text)).toEqual(['a=1', 'b=1']);
    for (const family of ['process_cpu_seconds_total counter', 'process_resident_memory_bytes gauge', 'nodejs_heap_size_used_bytes gauge', 'nodejs_eventloop_lag_p99_seconds gauge']) {
      expect(text).toContain(`# TYPE ${family}\n`);
    }

    // Round robin: one call each, so b has one running when it is asked to drain.
    const calls = [client.call('slow', [1_500]), client.call('slow', [1_500])];
    await waitFor('both nodes busy', () => gw.nodes().every((n) => n.inFlight === 1));
    expect(gw.drainNode('b')).toBe(true);
    await waitFor('b draining', () => gw.nodes().find((n) => n.nodeId === 'b')?.state === 'draining');
    expect(up(await scrape())).toEqual(['a=1', 'b=0']);
    expect(await Promise.all(calls)).toEqual(['done', 'done']);
    await waitFor('b to leave', () => !gw.nodes().some((n) => n.nodeId === 'b'));
    text = await scrape();
    expect(up(text)).toEqual(['a=1']);
    expect(text).toMatch(/^easyremote_nodes 1$/m);
  });
});
