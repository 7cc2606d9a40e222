// What the gateway refuses before reading a request, and what it lets wait: compressed
// requests and unauthenticated ones cost it nothing, whatever they would inflate to or
// weigh; a burst beyond every node's slots waits at the gateway instead of being refused.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, connect } from '@easyremote/client';
import type { ComputeNode } from '@easyremote/node';
import { encodeArgs } from '@easyremote/protocol';
import { spawnNode, startGateway, startNode, type NodeProcess } from './support/cluster.js';
import { rawCall, rawGatewayClient } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The V8 collector, exposed at run time (vitest's workers do not start with --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Heap and buffers held now, after a collection, and the peak RSS from `start` to `stop`. */
async function memoryWatch(gc: () => void) {
  // Twice, with a pause: buffers freed by one collection are released a little later.
  gc();
  await sleep(50);
  gc();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
  return {
    stop() {
      clearInterval(timer);
      gc();
      const now = process.memoryUsage();
      return { peakRssMiB: (peakRss - base.rss) / MiB, heldMiB: (now.heapUsed + now.arrayBuffers - base.heapUsed - base.arrayBuffers) / MiB };
    },
  };
}

interface SenderResult {
  bodyBytes: number;
  outcomes: Array<{ status: number; message: string; code: string }>;
}

/** Signals a test/fixtures/h2-request.ts process to send, and measures this process (the gateway's) meanwhile. */
async function measured(gc: () => void, sender: NodeProcess) {
  const watch = await memoryWatch(gc);
  sender.kill('SIGUSR2');
  const result = JSON.parse(await sender.waitForLine(/^\{/, 30_000)) as SenderResult;
  await sleep(100);
  const figures = watch.stop();
  console.log(`gateway process: peak RSS +${figures.peakRssMiB.toFixed(1)} MiB, heap and buffers after GC +${figures.heldMiB.toFixed(1)} MiB`);
  return { result, ...figures };
}

async function pingGateway(options: Parameters<typeof startGateway>[0] = {}) {
  const gw = await startGateway(options);
  cleanups.push(() => gw.stop());
  const node = await startNode(gw.address, (n) => n.register('ping', () => 'pong'), { nodeId: 'pinger', telemetry: false, token: undefined });
  cleanups.push(() => node.stop());
  return gw;
}

describe('compressed requests', () => {
  it('a grpc-js client compressing with gzip gets INVALID_ARGUMENT saying compressed requests are not accepted', async () => {
    const gw = await pingGateway();
    const gzipClient = rawGatewayClient(gw.address, { 'grpc.default_compression_algorithm': 2 });
    cleanups.push(() => gzipClient.close());
    const o = await rawCall(gzipClient, { function: 'ping', args: encodeArgs(['x'.repeat(10_000)]) });
    expect(o.status).toBe(grpc.status.INVALID_ARGUMENT);
    expect(o.detail).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/compressed requests are not accepted \(grpc-encoding gzip\)/) });
    // The same request uncompressed goes through.
    const plain = rawGatewayClient(gw.address);
    cleanups.push(() => plain.close());
    expect(await rawCall(plain, { function: 'ping', args: encodeArgs(['x'.repeat(10_000)]) })).toMatchObject({ status: grpc.status.OK });
  });

  it('gzip bombs over bare HTTP/2 (10 × 64 KB, inflating to 64 MB each) are refused before anything is inflated', async () => {
    const gc = collector();
    const gw = await pingGateway();
    const sender = await spawnNode('h2-request', gw.address, 'bomber', { BODY: 'bomb:64000000', COUNT: '10', HEADERS: JSON.stringify({ 'grpc-encoding': 'gzip' }) });
    cleanups.push(() => sender.kill('SIGKILL'));
    const { result, peakRssMiB, heldMiB } = await measured(gc, sender);
    expect(result.bodyBytes).toBeLessThan(100_000);
    expect(result.outcomes).toHaveLength(10);
    for (const o of result.outcomes) expect(o).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT', message: expect.stringMatching(/compressed requests are not accepted/) });
    // 640 MB had the gateway inflated them; it inflated nothing.
    expect(peakRssMiB).toBeLessThan(32);
    expect(heldMiB).toBeLessThan(8);
  });
});

describe('unauthenticated requests', () => {
  it('32 MiB requests without a token are refused UNAUTHENTICATED without the gateway reading or buffering them', async () => {
    const gc = collector();
    const gw = await startGateway({ auth: { clientTokens: ['client-secret'] } });
    cleanups.push(() => gw.stop());
    const node = await startNode(gw.address, (n) => n.register('len', (b: Buffer) => b.length), { nodeId: 'lengths', telemetry: false });
    cleanups.push(() => node.stop());

    // Four at once: 128 MiB the gateway must neither read nor let HTTP/2 buffer for it.
    const anonymous = await spawnNode('h2-request', gw.address, 'anonymous', { BODY: `large:${32 * MiB}`, COUNT: '4' });
    cleanups.push(() => anonymous.kill('SIGKILL'));
    const { result, peakRssMiB, heldMiB } = await measured(gc, anonymous);
    expect(result.outcomes).toHaveLength(4);
    for (const o of result.outcomes) expect(o).toEqual({ status: grpc.status.UNAUTHENTICATED, code: 'UNAUTHENTICATED', message: expect.stringMatching(/missing client token/) });
    expect(peakRssMiB).toBeLessThan(8);
    expect(heldMiB).toBeLessThan(8);

    // The same request with the token is read and served.
    const trusted = await spawnNode('h2-request', gw.address, 'trusted', { BODY: `large:${32 * MiB}`, HEADERS: JSON.stringify({ authorization: 'Bearer client-secret' }) });
    cleanups.push(() => trusted.kill('SIGKILL'));
    trusted.kill('SIGUSR2');
    const served = JSON.parse(await trusted.waitForLine(/^\{/, 30_000)) as SenderResult;
    expect(served.outcomes).toEqual([{ status: grpc.status.OK, code: '', message: expect.any(String) }]);
  });
});

describe('bursts', () => {
  async function tenSingleSlotNodes(options: Parameters<typeof startGateway>[0]) {
    const gw = await startGateway({ defaultStrategy: 'smart_adaptive', ...options });
    cleanups.push(() => gw.stop());
    const nodes: ComputeNode[] = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        startNode(gw.address, (n) => n.register('slot', async () => (await sleep(50), `n${i}`), { maxConcurrent: 1 }), { nodeId: `slot-${i}`, telemetry: false }),
      ),
    );
    cleanups.push(() => Promise.all(nodes.map((n) => n.stop())));
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    return { gw, client };
  }

  const burst = (client: Client, n: number) =>
    Promise.all(
      Array.from({ length: n }, () =>
        client.call<string>('slot', [], { timeout: 30_000 }).then(
          (value) => ({ value, error: undefined }),
          (error: unknown) => ({ value: undefined, error: error as { code: string; limit?: { name: string; limit: number } } }),
        ),
      ),
    );

  it('100 concurrent calls on 10 single-slot nodes all succeed: the excess waits at the gateway', async () => {
    const { gw, client } = await tenSingleSlotNodes({});
    const outcomes = await burst(client, 100);
    expect(outcomes.filter((o) => o.error !== undefined).map((o) => o.error!.code)).toEqual([]);
    // Every node served, none beyond its one slot (the node would have refused it Overloaded).
    const byNode = new Map<string, number>();
    for (const o of outcomes) byNode.set(o.value!, (byNode.get(o.value!) ?? 0) + 1);
    expect(byNode.size).toBe(10);
    expect(gw.admission.size('slot')).toBe(0);
  });

  it('with queueSize 5 on the gateway, the calls beyond it are refused OVERLOADED naming gateway_queue_size', async () => {
    const { client } = await tenSingleSlotNodes({ queueSize: 5 });
    const outcomes = await burst(client, 100);
    const refused = outcomes.filter((o) => o.error !== undefined);
    expect(refused.length).toBeGreaterThan(0);
    for (const o of refused) expect(o.error).toMatchObject({ code: 'OVERLOADED', limit: { name: 'gateway_queue_size', limit: 5 } });
    expect(outcomes.length - refused.length).toBeGreaterThanOrEqual(15);
  });
});
