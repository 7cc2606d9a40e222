// The command line with TLS and named principals: the gateway's certificate, node
// certificates and principals come from flags and variables; a node and a caller present
// their token (EASYREMOTE_TOKEN) and verify the gateway (--tls-ca); a node refused for
// good exits 1; --max-concurrent reaches the node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@easyremote/client';
import { CertificateLab, type Issued } from './support/certificates.js';
import { runCli, startCli, startCliGateway, type CliProcess } from './support/cli.js';

const FUNCTIONS = 'test/fixtures/cli-functions.js';
const NODE_TOKEN = 'gpu-node-token';
const APP_TOKEN = 'app-client-token';
const PRINCIPALS = JSON.stringify([
  { name: 'gpu-nodes', token: NODE_TOKEN, role: 'node', nodeIds: ['gpu-*'] },
  { name: 'app', token: APP_TOKEN, role: 'client' },
]);

const lab = new CertificateLab();
let ca: Issued;
let gateway: CliProcess & { address: string };
let gpu: CliProcess;
const started: CliProcess[] = [];

beforeAll(async () => {
  ca = lab.ca('cli-ca');
  const server = lab.issue(ca, 'gateway', { cn: 'gateway', san: 'IP:127.0.0.1', usage: 'serverAuth' });
  const gpuCert = lab.issue(ca, 'gpu-1', { cn: 'gpu-1', san: 'DNS:gpu-1', usage: 'clientAuth' });
  gateway = await startCliGateway(['--tls-cert', server.cert, '--tls-key', server.key, '--no-metrics'], {
    EASYREMOTE_TLS_CLIENT_CA: ca.cert,
    EASYREMOTE_TLS_NODE_CERTIFICATES: 'true',
    EASYREMOTE_PRINCIPALS: PRINCIPALS,
  });
  // No --id: the node's id is the one its certificate names.
  gpu = startCli(['node', FUNCTIONS, '--gateway', gateway.address, '--tls-ca', ca.cert, '--tls-cert', gpuCert.cert, '--max-concurrent', '1'], {
    EASYREMOTE_TOKEN: NODE_TOKEN,
    EASYREMOTE_NODE_KEY: gpuCert.key,
  });
  started.push(gateway, gpu);
  await gpu.waitForLine(/^node gpu-1 serving hello, nap through /);
}, 60_000);

afterAll(async () => {
  for (const p of started) p.signal('SIGKILL');
  await Promise.all(started.map((p) => p.exited));
  lab.remove();
});

describe('easyremote with TLS and principals', () => {
  it('call and status present the token and verify the gateway; without them they are refused', async () => {
    const tls = ['--gateway', gateway.address, '--tls-ca', ca.cert];
    const [ok, noToken, plaintext, status] = await Promise.all([
      runCli(['call', 'hello', ...tls], { EASYREMOTE_TOKEN: APP_TOKEN }),
      runCli(['call', 'hello', ...tls]),
      runCli(['call', 'hello', '--gateway', gateway.address], { EASYREMOTE_TOKEN: APP_TOKEN }),
      runCli(['status', '--json', '--gateway', gateway.address], { EASYREMOTE_TOKEN: APP_TOKEN, EASYREMOTE_TLS_CA: ca.cert }),
    ]);
    expect(ok).toMatchObject({ code: 0, stdout: 'hello\n' });
    expect(noToken).toMatchObject({ code: 19, stderr: expect.stringMatching(/^easyremote call: UNAUTHENTICATED: /m) });
    expect(plaintext).toMatchObject({ code: 26, stderr: expect.stringMatching(/^easyremote call: GATEWAY_UNAVAILABLE: .*TLS/m) });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['gpu-1']);
  });

  it('--max-concurrent 1: two calls on the node run one after the other', async () => {
    const client = new Client(gateway.address, { token: APP_TOKEN, tls: { ca: ca.cert } });
    try {
      const t0 = Date.now();
      expect(await Promise.all([client.call('nap', [400]), client.call('nap', [400])])).toEqual(['napped 400', 'napped 400']);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(790);
    } finally {
      client.close();
    }
  });

  it('a node refused for good (an id its principal may not register) exits 1 and says why', async () => {
    const cpuCert = lab.issue(ca, 'cpu-1', { cn: 'cpu-1', san: 'DNS:cpu-1', usage: 'clientAuth' });
    const cpu = startCli(['node', FUNCTIONS, '--gateway', gateway.address, '--tls-ca', ca.cert, '--tls-cert', cpuCert.cert, '--tls-key', cpuCert.key], { EASYREMOTE_TOKEN: NODE_TOKEN });
    started.push(cpu);
    const exit = await cpu.exited;
    expect(exit.code).toBe(1);
    expect(exit.stderr).toMatch(/PERMISSION_DENIED/);
    expect(exit.stderr).toMatch(/cpu-1/);
  });
});
