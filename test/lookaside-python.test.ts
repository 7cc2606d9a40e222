// A look-aside backend in another language: a plain Python grpcio server (not a
// ComputeNode), written from proto/README.md alone, registers with the gateway's
// LoadBalancer service, is picked by its strategies, and is called directly.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import { startGateway, waitFor } from './support/cluster.js';

// Debian's python3-grpcio lives in /usr/bin/python3, which a pyenv shim may shadow.
const python = ['/usr/bin/python3', 'python3'].find((bin) => spawnSync(bin, ['-c', 'import grpc, msgpack']).status === 0);
const withPython = it.skipIf(python === undefined && !process.env.CI);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

withPython('a Python grpcio backend registers, reports its load, is picked, called directly and deregisters', async () => {
  const gw = await startGateway({ auth: { nodeTokens: ['backend-token'], clientTokens: ['client-token'] } });
  cleanups.push(() => gw.stop());
  const child = spawn(python ?? 'python3', [new URL('./fixtures/python_backend.py', import.meta.url).pathname, gw.address, 'py-backend', 'backend-token', 'client-token'], { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  const line = async (prefix: string) => {
    await waitFor(`python: ${prefix} (stderr: ${stderr})`, () => lines.some((l) => l.startsWith(prefix)) || child.exitCode !== null, 15_000);
    expect(stderr).toBe('');
    return lines.find((l) => l.startsWith(prefix))!;
  };
  const port = Number((await line('ready ')).split(' ')[1]);
  // Its own GetBackend, as a Python client would ask, gets it back.
  expect(await line('pick ')).toBe(`pick py-backend 127.0.0.1 ${port} backend`);
  await line('reported');
  expect(gw.api.backends()).toMatchObject([{ id: 'py-backend', kind: 'backend', address: `127.0.0.1:${port}`, services: ['py_add'], load: 0.3, picks: 1, outcomes: 1, openPicks: 0, labels: { language: 'python' } }]);

  // A TypeScript client in look-aside mode calls it directly (over Call: it serves no Session).
  const client = connect(gw.address, { mode: 'look-aside', token: 'client-token' });
  cleanups.push(() => client.close());
  expect(await client.py_add(2, 3)).toBe(5);
  expect(await Promise.all([client.py_add(1, 1), client.py_add(20, 22)])).toEqual([2, 42]);
  expect(gw.metrics.live.overall().calls).toBe(0);
  await waitFor('the outcomes', () => gw.api.backends()[0]!.outcomes >= 4);

  child.stdin.end();
  expect(await line('deregistered')).toBe('deregistered True');
  expect(gw.nodes()).toEqual([]);
});
