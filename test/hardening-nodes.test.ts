// Nodes that misreport or misbehave: telemetry that cannot be true, a stream that ignores
// its credit, declarations that disagree about what is safe to repeat or to cache. The
// gateway must keep every call's outcome correct and its own memory bounded.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import { StaticTelemetryProvider, type ComputeNode } from '@easyremote/node';
import { CallRequest, encodeArgs, type FunctionInfo } from '@easyremote/protocol';
import { spawnNode, startGateway, startNode, waitFor, type NodeProcess } from './support/cluster.js';
import { grpcFrame, h2Request, RawNode, rawCall, rawGatewayClient, spec } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 2 ** 20;

function telemetry(cpuPercent: number): StaticTelemetryProvider {
  return new StaticTelemetryProvider(
    { cpuCores: 8, memoryTotalBytes: 16e9, gpus: [] },
    { cpuPercent, memoryUsedBytes: 4e9, memoryTotalBytes: 16e9, gpus: [] },
  );
}

describe('telemetry that cannot be true', () => {
  it('a node reporting cpuPercent NaN under smart_adaptive: calls succeed, the node shows the issue, and a healthy replacement takes over', async () => {
    const gw = await startGateway({ defaultStrategy: 'smart_adaptive', heartbeatMs: 200 });
    cleanups.push(() => gw.stop());
    const work = (x: number) => x * 2;
    const nan = await startNode(gw.address, (n) => n.register('work', work), { nodeId: 'nan-node', telemetry: telemetry(NaN), telemetryIntervalMs: 100 });
    cleanups.push(() => nan.stop());
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    const codes: string[] = [];
    const callMany = async (n: number) => {
      for (let i = 0; i < n; i++) {
        try {
          expect(await client.call('work', [i])).toBe(i * 2);
        } catch (err) {
          codes.push((err as { code?: string }).code ?? String(err));
        }
      }
    };

    // A heartbeat with telemetry has arrived once the gateway either keeps it or drops it.
    await waitFor('a heartbeat with telemetry', () => gw.nodes()[0]?.telemetryIssue !== '' || gw.nodes()[0]?.telemetry !== undefined);
    await callMany(30);
    const [info] = gw.nodes();
    expect(info).toMatchObject({ nodeId: 'nan-node', healthy: true, telemetry: undefined });
    expect(info!.telemetryIssue).toMatch(/telemetry dropped: cpuPercent NaN/);

    const healthy = await startNode(gw.address, (n) => n.register('work', work), { nodeId: 'healthy-node', telemetry: telemetry(20), telemetryIntervalMs: 100 });
    cleanups.push(() => healthy.stop());
    await waitFor('telemetry from the healthy node', () => gw.nodes().find((n) => n.nodeId === 'healthy-node')?.telemetry !== undefined);
    await callMany(30);
    await nan.stop();
    await waitFor('the NaN node to leave', () => gw.nodes().length === 1);
    await callMany(30);
    expect(codes).toEqual([]);
    expect(gw.nodes()[0]).toMatchObject({ nodeId: 'healthy-node', telemetryIssue: '', telemetry: { cpuPercent: 20 } });
  });
});

/** The V8 collector, exposed at run time (vitest's workers do not start with --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('stream credit', () => {
  it('a node pushing 200 × 1 MiB chunks past its credit to a caller that reads nothing: PROTOCOL_ERROR, a protocol-error cancel, and bounded gateway memory', async () => {
    const gc = collector();
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    // The node in its own process, so that what it sends is not counted in ours.
    const flood = await spawnNode('flood-node', gw.address, 'flooder', { CHUNKS: '200', CHUNK_BYTES: String(MiB) });
    cleanups.push(() => flood.kill('SIGKILL'));

    gc();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
    cleanups.push(() => clearInterval(sampler));

    // A caller over bare HTTP/2 that reads nothing until the node has pushed everything.
    const request = Buffer.from(CallRequest.encode({ function: 'flood', args: encodeArgs([]), options: undefined }).finish());
    const caller = h2Request(gw.address, '/easyremote.v1.Gateway/CallStream', grpcFrame(request), { paused: true });
    cleanups.push(() => caller.close());
    await flood.waitForLine(/^pushed 200$/, 60_000);
    await sleep(200);
    clearInterval(sampler);
    gc();
    const after = process.memoryUsage();
    const grewMiB = (peakRss - base.rss) / MiB;
    const heldMiB = (after.heapUsed + after.arrayBuffers - base.heapUsed - base.arrayBuffers) / MiB;
    console.log(`200 MiB pushed; peak RSS +${grewMiB.toFixed(0)} MiB; held after GC +${heldMiB.toFixed(0)} MiB`);
    expect(grewMiB).toBeLessThan(120);
    expect(heldMiB).toBeLessThan(50);

    expect(flood.lines.filter((l) => l.startsWith('cancel '))).toEqual(['cancel protocol-error']);
    caller.read();
    const end = await caller.done;
    expect(end.status).toBe(grpc.status.INTERNAL);
    expect(end.detail).toMatchObject({ code: 'PROTOCOL_ERROR', nodeId: 'flooder', message: expect.stringMatching(/beyond its credit/) });
    // What reached the caller is what the gateway held for it: within the credit and the stream's buffer.
    expect(end.messages.length).toBeLessThan(40);
    expect(gw.dispatcher.inFlight).toBe(0);
  }, 90_000);
});

describe('results larger than the limit', () => {
  it("a node sending result parts past max_payload_bytes: the call fails PAYLOAD_TOO_LARGE at once, on a per-call RPC and in a session, and the node is told 'result-too-large'", async () => {
    const LIMIT = 256 * 1024;
    const PART = 60 * 1024;
    const gw = await startGateway({ maxPayloadBytes: LIMIT });
    const node = new RawNode(gw.address);
    cleanups.push(() => gw.stop(), () => node.close());
    expect((await node.register('bloated', [spec('big')])).accepted).toBe(true);
    // Answers every invoke with parts that never end (within credit), until cancelled.
    const cancels: string[] = [];
    let seen = 0;
    const serve = setInterval(() => {
      for (const f of node.frames.slice(seen)) {
        if (f.invoke) for (let i = 0; i < 8; i++) node.send({ resultPart: { attemptId: f.invoke.attemptId, data: Buffer.alloc(PART, 1) } });
        if (f.cancel) cancels.push(f.cancel.reason);
      }
      seen = node.frames.length;
    }, 5);
    cleanups.push(() => clearInterval(serve));

    const expected = { code: 'PAYLOAD_TOO_LARGE', nodeId: 'bloated', message: expect.stringContaining('the result of big from node bloated is larger than max_payload_bytes (262144 bytes)') };
    const raw = rawGatewayClient(gw.address);
    cleanups.push(() => raw.close());
    const perCall = await rawCall(raw, { function: 'big', args: encodeArgs([]) });
    expect(perCall.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(perCall.detail).toMatchObject({ ...expected, limitName: 'max_payload_bytes', limit: LIMIT, actual: 5 * PART });
    for (const transport of ['session', 'unary'] as const) {
      const client = connect(gw.address, { transport });
      cleanups.push(() => client.close());
      await expect(client.call('big', [])).rejects.toMatchObject(expected);
    }
    await waitFor('three cancels', () => cancels.length === 3);
    expect(cancels).toEqual(['result-too-large', 'result-too-large', 'result-too-large']);
    expect(gw.dispatcher.inFlight).toBe(0);
    // The node is not blamed: it is still routable.
    expect(gw.nodes().map((n) => [n.nodeId, n.healthy])).toEqual([['bloated', true]]);
  });
});

describe('declarations that disagree on what is safe', () => {
  it('A registers charge idempotent first, B does not: a charge running on B when B is SIGKILLed fails NODE_LOST and never runs on A', async () => {
    const gw = await startGateway({ httpPort: 0 });
    cleanups.push(() => gw.stop());
    let ranOnA = 0;
    const a = await startNode(
      gw.address,
      (n) =>
        n.register(
          'charge',
          (_account: string) => {
            ranOnA++;
            return 'node-a';
          },
          { idempotent: true },
        ),
      { nodeId: 'node-a', telemetry: false },
    );
    cleanups.push(() => a.stop());
    const b = await spawnNode('charge-node', gw.address, 'node-b', { IDEMPOTENT: '0', CHARGE_MS: '20000' });
    cleanups.push(() => b.kill('SIGKILL'));
    await waitFor('both providers', () => gw.registry.functions.get('charge')?.providers.size === 2);
    const client = connect(gw.address);
    cleanups.push(() => client.close());

    const [charge] = await functionsDocument(gw.httpPort, 'charge');
    expect(charge!.config.idempotent).toBe(false);
    expect(charge!.conflict).toMatch(/node-b declare charge differently from node-a/);
    expect(charge!.conflict).toMatch(/not retried after a node is lost, since node-b do not declare it idempotent/);

    // Round robin: calls alternate; A answers at once, the first one to reach B stays there.
    let onB: Promise<unknown> | undefined;
    for (let i = 0; i < 4 && onB === undefined; i++) {
      const call = client.call<string>('charge', [`acct-${i}`], { timeout: 30_000 }).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      const first = await Promise.race([call, b.waitForLine(new RegExp(`^started charge acct-${i}$`), 5_000).then(() => 'on-b' as const, () => 'not-on-b' as const)]);
      if (first === 'on-b') onB = call;
      else expect(await call).toEqual({ value: 'node-a' });
    }
    expect(onB).toBeDefined();
    const ranBefore = ranOnA;
    b.kill('SIGKILL');
    const outcome = await onB!;
    expect(outcome).toMatchObject({ error: { code: 'NODE_LOST', nodeId: 'node-b' } });
    // Nothing reaches A later either (a retry would have run there at once).
    await sleep(500);
    expect(ranOnA).toBe(ranBefore);
    // With B gone, A alone defines charge again.
    expect(await client.call('charge', ['after'])).toBe('node-a');
  }, 60_000);

  it('cacheable with different versions: results are not cached, and /api/functions says why', async () => {
    const gw = await startGateway({ httpPort: 0 });
    cleanups.push(() => gw.stop());
    let ranOnA = 0;
    const quote = (item: string) => {
      ranOnA++;
      return `node-a:${item}`;
    };
    const a = await startNode(gw.address, (n) => n.register('quote', quote, { cacheable: true, version: '1' }), { nodeId: 'node-a', telemetry: false });
    cleanups.push(() => a.stop());
    const b = await spawnNode('charge-node', gw.address, 'node-b', { VERSION: '2' });
    cleanups.push(() => b.kill('SIGKILL'));
    await waitFor('both providers', () => gw.registry.functions.get('quote')?.providers.size === 2);

    const [info] = await functionsDocument(gw.httpPort, 'quote');
    expect(info!.config.cacheable).toBe(false);
    expect(info!.conflict).toMatch(/results not cached, since node-b do not declare it cacheable with version "1"/);

    const client = rawGatewayClient(gw.address);
    cleanups.push(() => client.close());
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await rawCall(client, { function: 'quote', args: encodeArgs(['same']) }));
    expect(replies.map((r) => r.reply?.cached)).toEqual([false, false, false, false, false, false]);
    const ranOnB = b.lines.filter((l) => l === 'ran quote same').length;
    expect(ranOnA + ranOnB).toBe(6);
    expect(gw.cache.stats().entries).toBe(0);
  }, 60_000);
});

async function functionsDocument(httpPort: number, name: string): Promise<FunctionInfo[]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/functions`);
  expect(res.status).toBe(200);
  return ((await res.json()) as FunctionInfo[]).filter((f) => f.name === name);
}
