// A client in another language, written from proto/README.md alone.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gateway } from '@easyremote/gateway';
import type { ComputeNode } from '@easyremote/node';
import { startGateway, startNode } from './support/cluster.js';

// Debian's python3-grpcio lives in /usr/bin/python3, which a pyenv shim may shadow.
const python = ['/usr/bin/python3', 'python3'].find((bin) => spawnSync(bin, ['-c', 'import grpc, msgpack']).status === 0);
const hasPython = python !== undefined;

let gw: Gateway;
let node: ComputeNode;
beforeAll(async () => {
  gw = await startGateway();
  node = await startNode(gw.address, (n) =>
    n
      .register('add', (a: number, b: number) => a + b)
      .register('greet', (p: { name: string; tags: string[] }) => `hello ${p.name} (${p.tags.join('+')})`)
      .register('countdown', function* (from: number) {
        for (let i = from; i > 0; i--) yield i;
      }),
  { nodeId: 'py-target' });
});
afterAll(async () => {
  await node.stop();
  await gw.stop();
});

it.skipIf(!hasPython && !process.env.CI)('python3 (grpcio + msgpack) calls unary and stream functions', async () => {
  // Asynchronously: the gateway runs in this process and must keep serving meanwhile.
  const run = await promisify(execFile)(python ?? 'python3', [new URL('./fixtures/python_client.py', import.meta.url).pathname, gw.address], { encoding: 'utf8', timeout: 30_000 });
  expect(run.stderr).toBe('');
  expect(run.stdout.trim().split('\n')).toEqual(['add 42 py-target', 'greet hello python (a+b)', 'countdown [3, 2, 1]', 'missing NOT_FOUND']);
});
