// TLS end to end, with certificates made by the openssl CLI for each run: clients (both
// transports), nodes, the admin client and the HTTP API over TLS; node ids taken from
// node certificates; wrong CAs refused; plaintext against TLS (and the reverse) failing
// fast and saying so; certificates reloaded without a restart, on a file change and on
// SIGHUP.
import { copyFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, connect, type DynamicClient } from '@easyremote/client';
import { Gateway, type GatewayOptions } from '@easyremote/gateway';
import { ComputeNode, type ComputeNodeOptions } from '@easyremote/node';
import { CertificateLab, type Issued } from './support/certificates.js';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { captureLogs } from './support/log-capture.js';

/** What "fails fast" means here: far below any deadline a caller would set. */
const FAST_MS = 2000;

let lab: CertificateLab;
let ca: Issued;
let otherCa: Issued;
let server: Issued;
let gpu1: Issued;
let rogue: Issued;
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  lab = new CertificateLab();
  ca = lab.ca('dev-ca');
  otherCa = lab.ca('other-ca');
  server = lab.issue(ca, 'server', { cn: 'gateway', san: 'IP:127.0.0.1,DNS:localhost', usage: 'serverAuth' });
  gpu1 = lab.issue(ca, 'gpu-1', { cn: 'gpu-1', san: 'DNS:gpu-1', usage: 'clientAuth' });
  // Names the same node, signed by a CA the gateway does not trust.
  rogue = lab.issue(otherCa, 'rogue', { cn: 'gpu-1', san: 'DNS:gpu-1', usage: 'clientAuth' });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  lab.remove();
});

/** The gateway's own copies of the server certificate, so a test can replace them. */
function gatewayFiles(name: string, from: Issued = server): { cert: string; key: string } {
  const cert = join(lab.dir, `${name}.crt`);
  const key = join(lab.dir, `${name}.key`);
  copyFileSync(from.cert, cert);
  copyFileSync(from.key, key);
  return { cert, key };
}

async function gateway(options: GatewayOptions): Promise<Gateway> {
  const gw = await startGateway(options);
  cleanups.push(() => gw.stop());
  return gw;
}

async function node(address: string, options: Partial<ComputeNodeOptions>): Promise<ComputeNode> {
  const n = await startNode(address, (n) => n.register('echo', (v: unknown) => v).register('count', async function* (k: number) {
    for (let i = 0; i < k; i++) yield i;
  }), { telemetry: false, ...options });
  cleanups.push(() => n.stop());
  return n;
}

function client(address: string, options: Parameters<typeof connect>[1]): DynamicClient {
  const c = connect(address, options);
  cleanups.push(() => c.close());
  return c;
}

/** How long a promise takes to settle, and its rejection. */
async function failure(p: PromiseLike<unknown>): Promise<{ ms: number; err: { code?: string; message: string } }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    return { ms: performance.now() - t0, err: err as { code?: string; message: string } };
  }
  throw new Error('expected a failure');
}

/** The serial of the certificate a new TLS connection to the port is served. */
function peerSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert), ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

function httpsGet(port: number, path: string): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: readFileSync(ca.cert), agent: false }, (res) => {
      const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the first 'disconnected' reason that matches. */
function disconnectedWith(n: ComputeNode, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const on = ({ reason }: { reason: string }) => {
      if (!pattern.test(reason)) return;
      n.off('disconnected', on);
      resolve(reason);
    };
    n.on('disconnected', on);
  });
}

describe('over TLS', () => {
  let gw: Gateway;

  beforeAll(async () => {
    const files = gatewayFiles('main');
    gw = await gateway({ tls: { ...files, clientCa: ca.cert, nodeCertificates: true }, httpPort: 0 });
    await node(gw.address, { tls: { ca: ca.cert, cert: gpu1.cert, key: gpu1.key } });
  });

  it('a node takes its id from its certificate; clients on both transports, the admin client and HTTPS work', async () => {
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['gpu-1']);
    for (const transport of ['session', 'unary'] as const) {
      const c = client(gw.address, { transport, tls: { ca: ca.cert } });
      expect(await c.echo({ transport, data: new Uint8Array([1, 2]) })).toEqual({ transport, data: new Uint8Array([1, 2]) });
      const seen: number[] = [];
      for await (const v of c.stream<number>('count', [3])) seen.push(v);
      expect(seen).toEqual([0, 1, 2]);
    }
    // The CA as PEM bytes, and the name to verify given apart from the address.
    const byName = client(gw.address, { tls: { ca: readFileSync(ca.cert), serverName: 'localhost' } });
    expect(await byName.echo('by name')).toBe('by name');

    const admin = new AdminClient(gw.address, { tls: { ca: ca.cert } });
    cleanups.push(() => admin.close());
    expect((await admin.nodes()).map((n) => n.nodeId)).toEqual(['gpu-1']);

    const api = await httpsGet(gw.httpPort, '/api/nodes');
    expect(api.status).toBe(200);
    expect((JSON.parse(api.body) as Array<{ nodeId: string }>).map((n) => n.nodeId)).toEqual(['gpu-1']);
    expect(api.serial).toBe(server.serial);
  });

  it('a node registering under an id its certificate does not name is refused UNAUTHENTICATED', async () => {
    const impostor = new ComputeNode({ gateway: gw.address, nodeId: 'gpu-2', telemetry: false, tls: { ca: ca.cert, cert: gpu1.cert, key: gpu1.key } });
    impostor.register('echo', (v: unknown) => v);
    cleanups.push(() => impostor.stop());
    await expect(impostor.start()).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/certificate names node "gpu-1"; it cannot register as "gpu-2"/) });
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['gpu-1']);
  });

  it('a node stream without a verified certificate is refused on its headers, before any frame', async () => {
    // No frame is ever written on this stream: the refusal can only come from the headers.
    const raw = new grpc.Client(gw.address, grpc.credentials.createSsl(readFileSync(ca.cert)));
    cleanups.push(() => raw.close());
    const stream = raw.makeBidiStreamRequest('/easyremote.v1.NodeLink/Connect', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata());
    const refused = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(refused.details).toMatch(/requires nodes to present a client certificate signed by its client CA/);

    for (const tls of [{ ca: ca.cert }, { ca: ca.cert, cert: rogue.cert, key: rogue.key }]) {
      const n = new ComputeNode({ gateway: gw.address, telemetry: false, tls });
      n.register('echo', (v: unknown) => v);
      cleanups.push(() => n.stop());
      await expect(n.start()).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/client certificate/) });
    }
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['gpu-1']);
  });

  it('a gateway certificate from another CA, or for another name, is refused by clients and nodes, fast', async () => {
    for (const [tls, transport] of [
      [{ ca: otherCa.cert }, 'session'],
      [{ ca: otherCa.cert }, 'unary'],
      [{ ca: ca.cert, serverName: 'elsewhere.example' }, 'session'],
    ] as const) {
      const c = client(gw.address, { transport, tls });
      const { ms, err } = await failure(c.echo(1));
      expect(err).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', message: expect.stringMatching(/the certificate of gateway 127\.0\.0\.1:\d+ was not accepted/) });
      expect(ms).toBeLessThan(FAST_MS);
    }
    const admin = new AdminClient(gw.address, { tls: { ca: otherCa.cert } });
    cleanups.push(() => admin.close());
    await expect(admin.nodes()).rejects.toMatchObject({ code: 'GATEWAY_UNAVAILABLE', message: expect.stringMatching(/was not accepted/) });

    const n = new ComputeNode({ gateway: gw.address, nodeId: 'gpu-1b', telemetry: false, backoff: { initialMs: 50, maxMs: 200 }, tls: { ca: otherCa.cert, cert: gpu1.cert, key: gpu1.key } });
    n.register('echo', (v: unknown) => v);
    const t0 = performance.now();
    const said = disconnectedWith(n, /certificate of gateway .* was not accepted/);
    const started = n.start().catch((e: Error) => e);
    await said;
    expect(performance.now() - t0).toBeLessThan(FAST_MS);
    await n.stop();
    expect(await started).toBeInstanceOf(Error);
  });
});

describe('TLS and plaintext do not mix, and say so at once', () => {
  let secure: Gateway;
  let plain: Gateway;

  beforeAll(async () => {
    secure = await gateway({ tls: gatewayFiles('mix') });
    plain = await gateway({});
  });

  it('plaintext clients and the admin client against a TLS gateway', async () => {
    for (const transport of ['session', 'unary'] as const) {
      const { ms, err } = await failure(client(secure.address, { transport }).echo(1));
      expect(err).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', message: expect.stringMatching(/gateway 127\.0\.0\.1:\d+ refused the connection: it may require TLS \(this connection is plaintext; set the tls option\)/) });
      expect(ms).toBeLessThan(FAST_MS);
    }
    const admin = new AdminClient(secure.address);
    cleanups.push(() => admin.close());
    const { ms, err } = await failure(admin.nodes());
    expect(err.message).toMatch(/it may require TLS/);
    expect(ms).toBeLessThan(FAST_MS);
  });

  it('TLS clients and the admin client against a plaintext gateway', async () => {
    for (const transport of ['session', 'unary'] as const) {
      const { ms, err } = await failure(client(plain.address, { transport, tls: { ca: ca.cert } }).echo(1));
      expect(err).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', message: expect.stringMatching(/gateway 127\.0\.0\.1:\d+ does not speak TLS: it may be listening in plaintext/) });
      expect(ms).toBeLessThan(FAST_MS);
    }
    const admin = new AdminClient(plain.address, { tls: true });
    cleanups.push(() => admin.close());
    const { ms, err } = await failure(admin.nodes());
    expect(err.message).toMatch(/does not speak TLS/);
    expect(ms).toBeLessThan(FAST_MS);
  });

  it('a node keeps retrying, and says why each time', async () => {
    for (const [address, tls, pattern] of [
      [secure.address, undefined, /stream error: gateway .* refused the connection: it may require TLS/],
      [plain.address, { ca: ca.cert }, /stream error: gateway .* does not speak TLS/],
    ] as const) {
      const n = new ComputeNode({ gateway: address, nodeId: 'mixed', telemetry: false, backoff: { initialMs: 50, maxMs: 200 }, tls });
      n.register('echo', (v: unknown) => v);
      const t0 = performance.now();
      const said = disconnectedWith(n, pattern);
      const started = n.start().catch((e: Error) => e);
      await said;
      expect(performance.now() - t0).toBeLessThan(FAST_MS);
      // Still retrying: a second attempt fails the same way.
      await disconnectedWith(n, pattern);
      await n.stop();
      expect(await started).toBeInstanceOf(Error);
    }
  });
});

describe('certificate reload without a restart', () => {
  it('replaced files are picked up by the watch; a half-done renewal keeps the old certificate', async () => {
    const files = gatewayFiles('watched');
    const { entries, logger } = captureLogs();
    const gw = await gateway({ tls: { ...files, watchIntervalMs: 100 }, httpPort: 0, logger });
    const before = client(gw.address, { tls: { ca: ca.cert } });
    await node(gw.address, { nodeId: 'watched-node', tls: { ca: ca.cert } });
    expect(await before.echo('before')).toBe('before');
    expect(await peerSerial(gw.port)).toBe(server.serial);

    const renewed = lab.issue(ca, 'renewed', { cn: 'gateway', san: 'IP:127.0.0.1,DNS:localhost', usage: 'serverAuth' });
    expect(renewed.serial).not.toBe(server.serial);
    // The certificate first, alone: it does not match the key in place, so nothing changes.
    copyFileSync(renewed.cert, files.cert);
    await waitFor('the failed reload to be logged', () =>
      entries.some((e) => e.level === 'error' && e.msg === 'certificate reload failed, keeping the certificate in use' && e.why === 'a file changed' && e.serial === server.serial && /is not the private key of/.test(String(e.reason))),
    );
    expect(await peerSerial(gw.port)).toBe(server.serial);
    expect(await before.echo('still')).toBe('still');

    copyFileSync(renewed.key, files.key);
    await waitFor('the renewed certificate to be served', async () => (await peerSerial(gw.port)) === renewed.serial, 5000);
    expect(entries.some((e) => e.level === 'info' && e.msg === 'certificates reloaded' && e.why === 'a file changed' && e.serial === renewed.serial && typeof e.validTo === 'string')).toBe(true);
    expect((await httpsGet(gw.httpPort, '/api/nodes')).serial).toBe(renewed.serial);
    // Connections already open go on; new ones verify the new certificate.
    expect(await before.echo('after')).toBe('after');
    expect(await client(gw.address, { tls: { ca: ca.cert } }).echo('new')).toBe('new');
    expect(gw.reloadCertificates()).toEqual({ status: 'unchanged', serial: renewed.serial });
  });

  it('SIGHUP and reloadCertificates() reload while the gateway runs; the signal is only listened for then', async () => {
    const files = gatewayFiles('hup');
    const listeners = process.listenerCount('SIGHUP');
    await gateway({});
    expect(process.listenerCount('SIGHUP')).toBe(listeners);
    const gw = new Gateway({ port: 0, metrics: false, tls: { ...files, watchIntervalMs: 0 } });
    expect(process.listenerCount('SIGHUP')).toBe(listeners);
    await gw.start();
    expect(process.listenerCount('SIGHUP')).toBe(listeners + 1);

    const second = lab.issue(ca, 'hup-2', { cn: 'gateway', san: 'IP:127.0.0.1,DNS:localhost', usage: 'serverAuth' });
    copyFileSync(second.cert, files.cert);
    copyFileSync(second.key, files.key);
    // Not watched: nothing changes until asked.
    await new Promise((r) => setTimeout(r, 300));
    expect(await peerSerial(gw.port)).toBe(server.serial);
    process.kill(process.pid, 'SIGHUP');
    await waitFor('the signal to reload the certificate', async () => (await peerSerial(gw.port)) === second.serial, 5000);

    const third = lab.issue(ca, 'hup-3', { cn: 'gateway', san: 'IP:127.0.0.1,DNS:localhost', usage: 'serverAuth' });
    copyFileSync(third.key, files.key);
    expect(gw.reloadCertificates()).toMatchObject({ status: 'failed', error: expect.objectContaining({ message: expect.stringMatching(/is not the private key of/) }) });
    expect(await peerSerial(gw.port)).toBe(second.serial);
    copyFileSync(third.cert, files.cert);
    expect(gw.reloadCertificates()).toEqual({ status: 'reloaded', serial: third.serial });
    expect(await peerSerial(gw.port)).toBe(third.serial);

    await gw.stop();
    expect(process.listenerCount('SIGHUP')).toBe(listeners);
  });
});

describe('configuration', () => {
  it('beyond loopback needs TLS and authentication, or insecure: true', async () => {
    const tokens = { nodeTokens: ['node-token'], clientTokens: ['client-token'] };
    const base = { port: 0, host: '0.0.0.0', metrics: false as const };
    await expect(new Gateway({ ...base, auth: tokens }).start()).rejects.toThrow(/without TLS and authentication: missing TLS \(tls: \{ cert, key \}\); set them, or insecure: true/);
    await expect(new Gateway({ ...base, tls: gatewayFiles('exposed') }).start()).rejects.toThrow(/missing node authentication \(node tokens, or tls.nodeCertificates\), client tokens/);
    for (const options of [
      { ...base, tls: gatewayFiles('exposed'), auth: tokens },
      { ...base, tls: { ...gatewayFiles('exposed'), clientCa: ca.cert, nodeCertificates: true }, auth: { clientTokens: ['client-token'] } },
      { ...base, insecure: true },
    ]) {
      const gw = new Gateway(options);
      await gw.start();
      await gw.stop();
    }
  });

  it('unusable TLS options are refused when the gateway is made', () => {
    const files = gatewayFiles('config');
    expect(() => new Gateway({ metrics: false, tls: { ...files, nodeCertificates: true } })).toThrow(/nodeCertificates needs clientCa/);
    expect(() => new Gateway({ metrics: false, tls: { cert: files.cert, key: gpu1.key } })).toThrow(/gpu-1\.key is not the private key of .*config\.crt/);
    expect(() => new Gateway({ metrics: false, tls: { cert: files.cert, key: join(lab.dir, 'missing.key') } })).toThrow(/cannot read the private key .*missing\.key/);
  });
});
