// A gateway and a compute node hold heap headroom while they run (docs/operations.md,
// "Large payloads"): V8's growing factor is set when they start and cleared when they stop.
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '@easyremote/gateway';
import { ComputeNode } from '@easyremote/node';
import { processHeapHeadroom } from '@easyremote/protocol';
import { startGateway, startNode } from './support/cluster.js';

const GiB = 2 ** 30;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('heap headroom', () => {
  it('a gateway holds its heapHeadroomBytes from start to stop', async () => {
    expect(processHeapHeadroom.growingPercent).toBe(0);
    // 1 GiB: far above this process's heap, so the percent is never 0 by the ceiling.
    const gw = await startGateway({ heapHeadroomBytes: GiB });
    cleanups.push(() => gw.stop());
    expect(processHeapHeadroom.growingPercent).toBeGreaterThan(100);
    await gw.stop();
    expect(processHeapHeadroom.growingPercent).toBe(0);
  });

  it('a node holds its own; the larger held applies while both run', async () => {
    const gw = await startGateway({ heapHeadroomBytes: 0 });
    cleanups.push(() => gw.stop());
    expect(processHeapHeadroom.growingPercent).toBe(0);
    const node = await startNode(gw.address, (n) => n.register('f', () => 1), { heapHeadroomBytes: GiB });
    cleanups.push(() => node.stop());
    const nodeOnly = processHeapHeadroom.growingPercent;
    expect(nodeOnly).toBeGreaterThan(100);
    const big = await startGateway({ heapHeadroomBytes: 4 * GiB });
    cleanups.push(() => big.stop());
    expect(processHeapHeadroom.growingPercent).toBeGreaterThan(3 * nodeOnly);
    await big.stop();
    expect(processHeapHeadroom.growingPercent).toBeLessThan(2 * nodeOnly);
    await node.stop();
    expect(processHeapHeadroom.growingPercent).toBe(0);
  });

  it('a headroom that is not a number of bytes >= 0 is refused at construction', () => {
    expect(() => new Gateway({ heapHeadroomBytes: -1 })).toThrow('gateway heapHeadroomBytes must be a number >= 0, got -1');
    expect(() => new Gateway({ heapHeadroomBytes: Number.NaN })).toThrow(TypeError);
    expect(() => new ComputeNode({ gateway: '127.0.0.1:1', heapHeadroomBytes: -5 })).toThrow('heapHeadroomBytes must be a number >= 0, got -5');
  });
});
