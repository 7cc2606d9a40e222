// The operator's view, with real processes on loopback: when node.start() settles, what
// the gateway and the node log, what a failed gateway start leaves behind and how it says
// why, and the /healthz and /readyz probes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import { Gateway, PortInUseError, type GatewayOptions } from '@easyremote/gateway';
import { ComputeNode, type ComputeNodeOptions } from '@easyremote/node';
import { CHANNEL_MAX_RECONNECT_BACKOFF_MS } from '../packages/node/src/link-transport.js';
import { NodeFrame, PROTOCOL_VERSION } from '@easyremote/protocol';
import { freePort, ROOT, spawnNode, startGateway, waitFor } from './support/cluster.js';
import { captureLogs, type LogEntry } from './support/log-capture.js';
import { FakeClock } from '../packages/gateway/test/support/fake-clock.js';
import { grpcFrame, RawNode, spec } from './support/raw.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(options: GatewayOptions = {}): Promise<Gateway> {
  const gw = await startGateway(options);
  cleanups.push(() => gw.stop());
  return gw;
}

function node(address: string, options: Partial<ComputeNodeOptions> = {}): ComputeNode {
  const n = new ComputeNode({ gateway: address, telemetry: false, backoff: { initialMs: 50, maxMs: 500 }, ...options });
  n.register('echo', (x: unknown) => x);
  cleanups.push(() => n.stop());
  return n;
}

/** How start() settled, and how long it took. */
async function outcome(p: Promise<void>): Promise<{ error: (Error & { code?: string }) | undefined; ms: number }> {
  const t0 = performance.now();
  const error = await p.then(
    () => undefined,
    (e: Error) => e,
  );
  return { error, ms: performance.now() - t0 };
}

/** Whether a TCP port on 127.0.0.1 can be listened on right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s: Server = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `node hold-port.mjs`, holding a port; resolves once it listens. */
async function holdPort(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['hold-port.mjs'], { cwd: FIXTURES, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(/port (\d+)/.exec(d.toString())![1])));
    child.once('exit', (code) => reject(new Error(`hold-port exited ${code}`)));
  });
  return { child, port };
}

/** Runs a process to its end (asynchronously: the gateway it talks to lives in this one). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr });
    });
  });
}

const fields = (e: LogEntry) => {
  const { time: _t, pid: _p, hostname: _h, ...rest } = e;
  return rest;
};

describe('node.start()', () => {
  it('rejects on a refusal no retry fixes, and the node stops trying', async () => {
    const gw = await gateway({
      leaseMs: 600,
      heartbeatMs: 200,
      auth: { principals: [{ name: 'lab-nodes', token: 'lab-secret', role: 'node', nodeIds: ['lab-*'] }] },
    });
    const { entries, logger } = captureLogs();
    const refusals = () => entries.filter((e) => e.msg === 'registration refused').length;

    const wrongToken = node(gw.address, { nodeId: 'lab-1', token: 'guess', logger });
    expect((await outcome(wrongToken.start())).error).toMatchObject({ code: 'UNAUTHENTICATED' });

    const wrongId = node(gw.address, { nodeId: 'office-1', token: 'lab-secret', logger });
    const denied = await outcome(wrongId.start());
    expect(denied.error).toMatchObject({ code: 'PERMISSION_DENIED', message: 'lab-nodes may not register node id "office-1"' });

    const badDeclaration = new ComputeNode({ gateway: gw.address, nodeId: 'lab-2', token: 'lab-secret', telemetry: false, logger });
    badDeclaration.register('f', () => 1, { loadBalancing: 'no_such_strategy' });
    cleanups.push(() => badDeclaration.stop());
    const invalid = await outcome(badDeclaration.start());
    expect(invalid.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(invalid.error!.message).toMatch(/^node lab-2: function f: unknown strategy "no_such_strategy"/);

    // Each was refused once, and each stopped: nothing more reaches the gateway.
    expect(refusals()).toBe(3);
    expect(entries.filter((e) => e.msg === 'stopped').map((e) => [e.nodeId, e.reason])).toEqual([
      ['lab-1', 'refused'],
      ['office-1', 'refused'],
      ['lab-2', 'refused'],
    ]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(refusals()).toBe(3);
    expect(gw.nodes()).toEqual([]);
  });

  it('a node id held by a live node: retried until the holder would have expired if stale, then REGISTRATION_REFUSED', async () => {
    const gw = await gateway({ leaseMs: 600, heartbeatMs: 200 });
    const holder = node(gw.address, { nodeId: 'gpu-1' });
    await holder.start();
    const { entries, logger } = captureLogs();
    const second = node(gw.address, { nodeId: 'gpu-1', logger });
    const { error, ms } = await outcome(second.start());
    expect(error).toMatchObject({ code: 'REGISTRATION_REFUSED' });
    expect(error!.message).toMatch(/^node id gpu-1 is already connected from .*, still \d+ ms after the first refusal, longer than a stale session of this node would live: another node is using the id gpu-1$/);
    const refused = entries.filter((e) => e.msg === 'registration refused, retrying');
    expect(refused).toHaveLength(2);
    // At most the lease (600) plus one check (100), at least the check; and waited out in full before giving up.
    const retryAfterMs = refused[0]!.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThanOrEqual(100);
    expect(retryAfterMs).toBeLessThanOrEqual(700);
    expect(ms).toBeGreaterThanOrEqual(retryAfterMs);
    expect(ms).toBeLessThan(10_000);
    // The holder was never displaced.
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['gpu-1']);
    expect(holder.isRegistered).toBe(true);
  });

  it("the gateway's refusal of a taken id says when the holder's lease runs out if it stays silent (fake clock)", async () => {
    const clock = new FakeClock();
    // heartbeat 1000, lease 3000: leases are checked every min(1000 / 2, 3000 / 4) = 500 ms.
    const gw = await gateway({ clock, heartbeatMs: 1000, leaseMs: 3000 });
    const holder = new RawNode(gw.address, { answerPings: false });
    const claimant = new RawNode(gw.address);
    cleanups.push(() => holder.close(), () => claimant.close());
    expect((await holder.register('taken', [spec('f')])).accepted).toBe(true);
    clock.advance(400);
    // Another process: another instance id (RawNode.register would reuse the holder's).
    const claim = async () => {
      const from = claimant.frames.length;
      claimant.send({ register: { nodeId: 'taken', token: '', functions: [spec('f')], capabilities: undefined, protocolVersion: PROTOCOL_VERSION, instanceId: 'another-process', gateways: [], directAddress: '' } });
      return (await claimant.next((f) => f.registered !== undefined, 10_000, from)).registered!;
    };
    expect((await claim()).refusal).toMatchObject({ code: 'REGISTRATION_REFUSED', retryAfterMs: 3000 - 400 + 500 });
    clock.advance(1000);
    expect((await claim()).refusal).toMatchObject({ retryAfterMs: 3000 - 1400 + 500 });
    // Silent past its lease, the holder is lost at the next check, and the id is free.
    clock.advance(3000 - 1400 + 500);
    await waitFor('the holder to be lost', () => gw.nodes().length === 0);
    expect((await claim()).accepted).toBe(true);
  });

  it('a node id held by a stale session of a hung process: start() resolves once its lease runs out', async () => {
    const gw = await gateway({ leaseMs: 600, heartbeatMs: 200 });
    const hung = await spawnNode('ping-node', gw.address, 'restarted-1');
    cleanups.push(() => hung.kill('SIGKILL'));
    hung.kill('SIGSTOP');
    const { entries, logger } = captureLogs();
    const replacement = new ComputeNode({ gateway: gw.address, nodeId: 'restarted-1', telemetry: false, logger });
    replacement.register('ping', () => 'pong:replacement');
    cleanups.push(() => replacement.stop());
    const { error } = await outcome(replacement.start());
    expect(error).toBeUndefined();
    expect(entries.some((e) => e.msg === 'registration refused, retrying' && e.code === 'REGISTRATION_REFUSED')).toBe(true);
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    expect(await client.ping()).toBe('pong:replacement');
  });

  it('connectTimeoutMs with no gateway: GATEWAY_UNAVAILABLE naming the address, then the node stops dialling', async () => {
    const port = await freePort();
    const { entries, logger } = captureLogs();
    const lonely = node(`127.0.0.1:${port}`, { nodeId: 'lonely', connectTimeoutMs: 1500, logger });
    const { error, ms } = await outcome(lonely.start());
    expect(error).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', retryable: true });
    expect(error!.message).toMatch(new RegExp(`^gateway 127\\.0\\.0\\.1:${port} unavailable: node lonely was not registered within connectTimeoutMs \\(1500 ms\\); \\d+ attempt\\(s\\) failed, the last with: stream error: .*`));
    expect(ms).toBeGreaterThanOrEqual(1400);
    expect(ms).toBeLessThan(10_000);
    expect(entries.filter((e) => e.msg === 'reconnecting').length).toBeGreaterThan(0);
    expect(fields(entries.find((e) => e.msg === 'start failed')!)).toMatchObject({ level: 'error', nodeId: 'lonely', code: 'GATEWAY_UNAVAILABLE' });
    expect(fields(entries.at(-1)!)).toMatchObject({ level: 'info', msg: 'stopped', reason: 'connect timeout' });

    // A gateway that comes up afterwards hears nothing from it (once grpc-js's own reconnect
    // timer, at most CHANNEL_MAX_RECONNECT_BACKOFF_MS, has run out: it may dial once more).
    await new Promise((r) => setTimeout(r, CHANNEL_MAX_RECONNECT_BACKOFF_MS + 200));
    let connections = 0;
    const listener = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => listener.close(r)));
    await new Promise((r) => setTimeout(r, 1200));
    expect(connections).toBe(0);
  });

  it('a gateway that comes up within connectTimeoutMs: start() resolves', async () => {
    const port = await freePort();
    const early = node(`127.0.0.1:${port}`, { nodeId: 'early', connectTimeoutMs: 20_000 });
    const started = outcome(early.start());
    await new Promise((r) => setTimeout(r, 700));
    await gateway({ port });
    expect((await started).error).toBeUndefined();
    expect(early.isRegistered).toBe(true);
  });
});

describe('logs', () => {
  it('the gateway and the node log lifecycle events with structured fields, never per call', async () => {
    const gwLogs = captureLogs();
    const gw = await gateway({ logger: gwLogs.logger, leaseMs: 600, heartbeatMs: 200, httpPort: 0 });
    const nodeLogs = captureLogs();
    const n = node(gw.address, { nodeId: 'logged-1', logger: nodeLogs.logger, backoff: { initialMs: 200, maxMs: 200 } });
    await n.start();
    const client = connect(gw.address);
    cleanups.push(() => client.close());

    const gwLines = () => gwLogs.entries.map(fields);
    expect(gwLines()[0]).toEqual({ level: 'info', component: 'gateway', gatewayId: gw.id, address: gw.address, httpPort: gw.httpPort, tls: false, msg: 'gateway listening' });
    await waitFor('the join to be logged', () => gwLogs.entries.some((e) => e.msg === 'node joined'));
    const joined = gwLines().find((e) => e.msg === 'node joined')!;
    expect(joined).toMatchObject({ level: 'info', component: 'gateway', gatewayId: gw.id, nodeId: 'logged-1', principal: 'anonymous', functions: 1 });
    expect(joined.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(nodeLogs.entries.map(fields).slice(0, 2)).toEqual([
      { level: 'info', component: 'node', nodeId: 'logged-1', gateway: gw.address, msg: 'connecting' },
      { level: 'info', component: 'node', nodeId: 'logged-1', gateway: gw.address, gatewayId: gw.id, functions: ['echo'], msg: 'registered' },
    ]);

    const before = [gwLogs.entries.length, nodeLogs.entries.length];
    for (let i = 0; i < 20; i++) expect(await client.echo(i)).toBe(i);
    await expect(client.call('missing')).rejects.toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    expect([gwLogs.entries.length, nodeLogs.entries.length]).toEqual(before);

    // A second node under the same id is refused, and the gateway says so.
    const dup = node(gw.address, { nodeId: 'logged-1', logger: { level: 'silent' }, connectTimeoutMs: 300 });
    await outcome(dup.start());
    expect(gwLines().find((e) => e.msg === 'node refused')).toMatchObject({
      level: 'warn',
      nodeId: 'logged-1',
      principal: 'anonymous',
      code: 'REGISTRATION_REFUSED',
      reason: expect.stringMatching(/^node id logged-1 is already connected from 127\.0\.0\.1:\d+$/),
    });

    gw.drainNode('logged-1');
    await waitFor('the node to drain and leave', () => gwLogs.entries.some((e) => e.msg === 'node left' || e.msg === 'node lost'));
    expect(gwLines().find((e) => e.msg === 'node draining')).toMatchObject({ level: 'info', nodeId: 'logged-1', by: 'operator' });
    const nodeLines = nodeLogs.entries.map(fields);
    expect(nodeLines).toContainEqual(expect.objectContaining({ msg: 'the gateway asked this node to drain' }));
    expect(nodeLines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'draining', activeCalls: 0 }));
    expect(nodeLines.at(-1)).toMatchObject({ level: 'info', msg: 'stopped', reason: 'drained' });

    await gw.stop();
    expect(gwLines().slice(-2).map((e) => e.msg)).toEqual(['gateway stopping', 'gateway stopped']);
  });

  it("a gateway's own stop ends its nodes' streams at info level, not as warnings", async () => {
    const gwLogs = captureLogs();
    const gw = await gateway({ logger: gwLogs.logger });
    const n = node(gw.address, { nodeId: 'at-stop', logger: { level: 'silent' } });
    await n.start();
    await gw.stop();
    const lost = gwLogs.entries.map(fields).filter((e) => e.msg === 'node lost');
    expect(lost).toEqual([expect.objectContaining({ level: 'info', nodeId: 'at-stop', reason: 'gateway-shutdown' })]);
    expect(gwLogs.entries.map(fields).filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);
  });

  it('a node that loses its gateway logs disconnected and each reconnect, then registered again', async () => {
    const port = await freePort();
    const first = new Gateway({ port, metrics: false });
    await first.start();
    const { entries, logger } = captureLogs();
    const n = node(first.address, { nodeId: 'survivor', logger, backoff: { initialMs: 100, maxMs: 200 } });
    await n.start();
    await first.stop();
    await waitFor('two reconnects', () => entries.filter((e) => e.msg === 'reconnecting').length >= 2);
    const second = await gateway({ port });
    await waitFor('the second registration', () => entries.filter((e) => e.msg === 'registered').length === 2, 10_000);
    const lines = entries.map(fields);
    expect(lines.find((e) => e.msg === 'disconnected')).toMatchObject({ level: 'warn', gateway: `127.0.0.1:${port}`, reason: expect.any(String) });
    const reconnects = lines.filter((e) => e.msg === 'reconnecting');
    expect(reconnects[0]).toMatchObject({ level: 'info', attempt: 1, delayMs: expect.any(Number) });
    expect(reconnects[1]).toMatchObject({ attempt: 2, reason: expect.stringMatching(/^stream error: /) });
    expect(lines.filter((e) => e.msg === 'registered').at(-1)).toMatchObject({ gatewayId: second.id });
  });

  it('a real process logs JSON lines on stderr when it is not a terminal, and readable lines on one', async () => {
    const gw = await gateway();
    const env = { ...process.env, GATEWAY: gw.address, NODE_ID: 'json-1', EASYREMOTE_LOG_LEVEL: 'info' };
    const command = [process.execPath, '--import', 'tsx', join(FIXTURES, 'log-node.ts')];
    const piped = await run(command[0]!, command.slice(1), env);
    expect(piped.stdout).toBe('');
    const lines = piped.stderr.trim().split('\n').map((l) => JSON.parse(l) as LogEntry);
    expect(lines.map((l) => l.msg)).toEqual(['connecting', 'registered', 'stopped']);
    expect(lines[1]).toMatchObject({ level: 'info', component: 'node', nodeId: 'json-1', gateway: gw.address, gatewayId: gw.id, functions: ['ping'] });

    // util-linux `script` gives the child a terminal.
    if (spawnSync('script', ['--version']).status !== 0) return;
    const tty = await run('script', ['-qec', command.join(' '), '/dev/null'], { ...env, NODE_ID: 'tty-1', NO_COLOR: '1' });
    const shown = tty.stdout.replaceAll('\r', '').trim().split('\n');
    const stamp = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}';
    expect(shown).toHaveLength(3);
    expect(shown[0]).toMatch(new RegExp(`^${stamp} INFO  node: connecting nodeId=tty-1 gateway=${gw.address}$`));
    expect(shown[1]).toMatch(new RegExp(`^${stamp} INFO  node: registered nodeId=tty-1 gateway=${gw.address} gatewayId=${gw.id} functions=\\["ping"\\]$`));
    expect(shown[2]).toMatch(new RegExp(`^${stamp} INFO  node: stopped nodeId=tty-1 reason=stopped$`));
  });
});

describe('a start that fails', () => {
  it('the gRPC port in use by another process: one line naming the port and the process; nothing is left bound or open', async () => {
    const { child, port } = await holdPort();
    const dir = mkdtempSync(join(tmpdir(), 'er-ops-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const httpPort = await freePort();
    const gw = new Gateway({ port, httpPort, metrics: { path: join(dir, 'metrics.db') } });
    const error = await gw.start().then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect(error!.message).toBe(`port ${port} (gRPC) on 127.0.0.1 is already in use by pid ${child.pid} (node hold-port.mjs)`);
    expect(error).toMatchObject({ code: 'EADDRINUSE', port, listener: 'gRPC', owner: { pid: child.pid, command: 'node hold-port.mjs' } });
    expect(await portFree(httpPort)).toBe(true);
    expect(gw.metrics.store!.health().closed).toBe(true);
    await expect(gw.start()).rejects.toThrow('this gateway was stopped; create a new one');
  });

  it('the HTTP port in use: the gRPC port it had bound is free again and the metrics database closed', async () => {
    const { child, port: httpPort } = await holdPort();
    const dir = mkdtempSync(join(tmpdir(), 'er-ops-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const gw = new Gateway({ port, httpPort, metrics: { path: join(dir, 'metrics.db') } });
    const error = await gw.start().then(() => undefined, (e: Error) => e);
    expect(error!.message).toBe(`port ${httpPort} (HTTP) on 127.0.0.1 is already in use by pid ${child.pid} (node hold-port.mjs)`);
    expect(error).toMatchObject({ code: 'EADDRINUSE', port: httpPort, listener: 'HTTP' });
    expect(await portFree(port)).toBe(true);
    expect(gw.metrics.store!.health().closed).toBe(true);
    // Closed for real: the file can be removed and opened again by a new gateway.
    expect(existsSync(join(dir, 'metrics.db'))).toBe(true);
    const again = new Gateway({ port, metrics: { path: join(dir, 'metrics.db') } });
    await again.start();
    await again.stop();
  });

  it('a port this very process holds says so', async () => {
    const gw = await gateway();
    const error = await new Gateway({ port: gw.port, metrics: false }).start().then(() => undefined, (e: Error) => e);
    expect(error!.message).toBe(`port ${gw.port} (gRPC) on 127.0.0.1 is already in use by this process (pid ${process.pid})`);
  });
});

describe('/healthz and /readyz', () => {
  const get = async (port: number, path: string, method = 'GET') => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), cache: res.headers.get('cache-control'), body: text === '' ? undefined : JSON.parse(text) };
  };

  it('answer without a token while the rest of the API asks for one', async () => {
    const gw = await gateway({ httpPort: 0, auth: { clientTokens: ['secret-token'] } });
    expect(await get(gw.httpPort, '/healthz')).toEqual({ status: 200, type: 'application/json', cache: 'no-store', body: { alive: true } });
    expect(await get(gw.httpPort, '/readyz')).toEqual({ status: 200, type: 'application/json', cache: 'no-store', body: { ready: true, state: 'serving', metricsStore: 'ok' } });
    expect(await get(gw.httpPort, '/readyz/', 'HEAD')).toMatchObject({ status: 200, body: undefined });
    expect((await get(gw.httpPort, '/api/nodes')).status).toBe(401);
    expect((await get(gw.httpPort, '/readyz', 'POST')).status).toBe(401);
  });

  it('/readyz is 503 while the metrics store cannot write, and 200 again once it can', async () => {
    const gw = await gateway({ httpPort: 0, metrics: false });
    expect((await get(gw.httpPort, '/readyz')).body).toEqual({ ready: true, state: 'serving', metricsStore: 'disabled' });

    const withStore = await gateway({ httpPort: 0 });
    const store = withStore.metrics.store!;
    store.database.pragma('query_only = 1');
    const n = node(withStore.address, { nodeId: 'writer' });
    await n.start();
    store.flush();
    const failing = await get(withStore.httpPort, '/readyz');
    expect(failing.status).toBe(503);
    expect(failing.body).toMatchObject({ ready: false, state: 'serving', metricsStore: 'failing' });
    expect(failing.body.reason).toMatch(/^the metrics store cannot write: metrics write failed, \d+ rows dropped: SQLITE_READONLY: attempt to write a readonly database$/);
    expect((await get(withStore.httpPort, '/healthz')).status).toBe(200);

    store.database.pragma('query_only = 0');
    await n.stop();
    await waitFor('the node to be gone', () => withStore.nodes().length === 0);
    store.flush();
    expect((await get(withStore.httpPort, '/readyz')).status).toBe(200);
  });

  it('/readyz is 503 from the moment stop() begins; the HTTP port closes last', async () => {
    const gw = new Gateway({ port: 0, httpPort: 0, metrics: false });
    await gw.start();
    // A node stream whose node never ends its side holds grpc-js's graceful shutdown for its full grace (1 s).
    const h2 = http2.connect(`http://${gw.address}`);
    h2.on('error', () => undefined);
    cleanups.push(() => h2.destroy());
    const stream = h2.request({ ':method': 'POST', ':path': '/easyremote.v1.NodeLink/Connect', 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    const register = NodeFrame.encode({ register: { nodeId: 'holder', token: '', functions: [spec('f')], capabilities: undefined, protocolVersion: PROTOCOL_VERSION, instanceId: 'i', gateways: [], directAddress: '' } }).finish();
    stream.write(grpcFrame(Buffer.from(register)));
    await new Promise<void>((r) => stream.once('data', () => r()));

    const stopped = gw.stop();
    const during = await get(gw.httpPort, '/readyz');
    expect(during).toMatchObject({ status: 503, body: { ready: false, state: 'stopping', metricsStore: 'disabled', reason: 'the gateway is stopping' } });
    expect((await get(gw.httpPort, '/healthz')).status).toBe(200);
    await stopped;
    await expect(get(gw.httpPort, '/healthz')).rejects.toThrow();
  });
});
