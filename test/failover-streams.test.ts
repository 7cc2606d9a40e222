// Stream calls whose gateway connection breaks (cut at a TCP relay, as a dying gateway
// cuts it), on both transports: resent to another gateway only when the function is
// idempotent and no chunk was delivered; otherwise GATEWAY_LOST at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import type { ComputeNode } from '@easyremote/node';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { tcpRelay, type TcpRelay } from './support/tcp-relay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['session', 'unary'] as const)('a stream whose gateway is lost (%s transport)', (transport) => {
  let gateways: Gateway[];
  let relays: TcpRelay[];
  let node: ComputeNode;
  let client: DynamicClient;

  beforeAll(async () => {
    gateways = await Promise.all([startGateway(), startGateway()]);
    relays = await Promise.all(gateways.map((g) => tcpRelay(g.address)));
    node = await startNode(
      gateways[0]!.address,
      (n) => {
        // Waits before its first value, so a test can cut the connection before or after it.
        async function* ticks(count: number, firstAfterMs: number) {
          await sleep(firstAfterMs);
          for (let i = 0; i < count; i++) {
            yield i;
            await sleep(20);
          }
        }
        n.register('ticks', ticks, { idempotent: true });
        n.register('ticks_once', ticks);
      },
      { gateways: [gateways[1]!.address], nodeId: `streamer-${transport}` },
    );
    await waitFor('the node on both gateways', () => gateways.every((g) => g.nodes().length === 1));
    client = connect(relays.map((r) => r.address), { transport });
    // The client learns which functions are idempotent from the first replies.
    for await (const _ of client.stream('ticks', [1, 0]));
    for await (const _ of client.stream('ticks_once', [1, 0]));
  });

  afterAll(async () => {
    client?.close();
    await node?.stop();
    await Promise.all((relays ?? []).map((r) => r.close()));
    await Promise.all((gateways ?? []).map((g) => g.stop()));
  });

  async function consume(fn: string, args: unknown[], onValue: (v: number) => void) {
    const values: number[] = [];
    try {
      for await (const v of client.stream<number>(fn, args, { timeout: 10_000 })) {
        values.push(v);
        onValue(v);
      }
      return { values, at: performance.now() };
    } catch (error) {
      return { values, error: error as { code: string; message: string }, at: performance.now() };
    }
  }

  it('an idempotent stream cut before its first chunk is resent and completes', async () => {
    const outcome = consume('ticks', [3, 300], () => undefined);
    await sleep(100);
    for (const r of relays) r.cut();
    expect(await outcome).toMatchObject({ values: [0, 1, 2] });
    expect((await outcome).error).toBeUndefined();
  });

  it('an idempotent stream cut after a chunk reached the caller fails GATEWAY_LOST at once', async () => {
    let cutAt = 0;
    const outcome = await consume('ticks', [50, 0], (v) => {
      if (v === 1) {
        cutAt = performance.now();
        for (const r of relays) r.cut();
      }
    });
    expect(outcome.values.length).toBeLessThan(50);
    expect(outcome.error).toMatchObject({ code: 'GATEWAY_LOST', message: expect.stringMatching(/may or may not have run/) });
    expect(outcome.at - cutAt).toBeLessThan(1000);
  });

  it('a stream of a function that is not idempotent, cut before its first chunk, fails GATEWAY_LOST at once', async () => {
    const started = consume('ticks_once', [3, 300], () => undefined);
    await sleep(100);
    const cutAt = performance.now();
    for (const r of relays) r.cut();
    const outcome = await started;
    expect(outcome).toMatchObject({ values: [], error: { code: 'GATEWAY_LOST' } });
    expect(outcome.at - cutAt).toBeLessThan(1000);
    // The client goes on: the next call finds a gateway again (once it has seen the other
    // cut connection close too: a call sent into a connection as it dies is lost as well).
    await sleep(200);
    const again = await consume('ticks_once', [2, 0], () => undefined);
    expect([again.values, again.error]).toEqual([[0, 1], undefined]);
  });
});
