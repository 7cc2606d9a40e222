// Node processes that die mid-call, and a gateway that restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { freePort, spawnNode, startGateway, startNode, waitFor, type NodeProcess } from './support/cluster.js';

describe('a node killed mid-call', () => {
  let gw: Gateway;
  let client: DynamicClient;
  const procs: NodeProcess[] = [];

  beforeAll(async () => {
    gw = await startGateway();
    procs.push(...(await Promise.all([spawnNode('worker-node', gw.address, 'proc-a'), spawnNode('worker-node', gw.address, 'proc-b'), spawnNode('worker-node', gw.address, 'proc-c')])));
    client = connect(gw.address);
    await waitFor('three nodes', () => gw.nodes().length === 3);
  });

  afterAll(async () => {
    client.close();
    for (const p of procs) p.kill('SIGKILL');
    await gw.stop();
  });

  /** Starts `fn`, waits until a node reports it started, SIGKILLs that node. */
  async function killWhereStarted(fn: 'slow_once' | 'slow_idem', ms: number) {
    const started = Promise.race(procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.waitForLine(new RegExp(`^started ${fn} `)).then(() => p)));
    const t0 = Date.now();
    const outcome = client.call<string>(fn, [ms], { timeout: 20_000 }).then(
      (value) => ({ value, at: Date.now() }),
      (error: unknown) => ({ error, at: Date.now() }),
    );
    const victim = await started;
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    return { outcome: await outcome, victim, killedAt, t0 };
  }

  // That it fails at once, not retried, is dispatcher.test.ts's (fake time); here: the wiring, from a real SIGKILL.
  it('a non-idempotent call fails with NodeLost when its node dies, long before its deadline', async () => {
    const { outcome, victim, killedAt } = await killWhereStarted('slow_once', 10_000);
    expect(outcome).toHaveProperty('error');
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'NodeLost', code: 'NODE_LOST', nodeId: victim.nodeId });
    // The handler would run 10 s and the deadline is 20 s: the broken stream decided.
    expect(outcome.at - killedAt).toBeLessThan(5_000);
  });

  it('an idempotent call is answered by another node', async () => {
    await waitFor('two nodes left', () => gw.nodes().length === 2);
    const { outcome, victim } = await killWhereStarted('slow_idem', 1500);
    expect(outcome).toHaveProperty('value');
    const value = (outcome as { value: string }).value;
    expect(value).not.toBe(victim.nodeId);
    expect(procs.map((p) => p.nodeId)).toContain(value);
  }, 40_000);
});

describe('a gateway restart', () => {
  it('nodes re-register by themselves and calls work again', async () => {
    const port = await freePort();
    let gw = await startGateway({ port });
    const node = await startNode(gw.address, (n) => n.register('ping', () => 'pong'), { nodeId: 'survivor' });
    const client = connect(gw.address);
    expect(await client.ping()).toBe('pong');

    await gw.stop();
    // The gateway is down: the client says so (retryable), not that no node is available.
    await expect(client.call('ping', [], { timeout: 2000 })).rejects.toMatchObject({ code: 'GATEWAY_UNAVAILABLE', retryable: true });

    gw = await startGateway({ port });
    await waitFor('the node to re-register', () => gw.nodes().some((n) => n.nodeId === 'survivor'), 10_000);
    // The client's channel reconnects on its own backoff (at most 1 s apart).
    const t0 = Date.now();
    await waitFor(
      'a call to succeed',
      async () => {
        try {
          return (await client.ping()) === 'pong';
        } catch {
          return false;
        }
      },
      5_000,
      100,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await client.ping()).toBe('pong');

    client.close();
    await node.stop();
    await gw.stop();
  });
});
