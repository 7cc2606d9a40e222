// A gateway stopped gracefully: new calls are refused GATEWAY_UNAVAILABLE on every
// transport (they were not run), calls in flight finish within the grace and their rows
// are written, calls still running when the grace ends are ended CANCELLED, and a second
// stop with a shorter grace cuts the wait short. The signal helpers do the same on a
// signal (the gateway's stopOnSignals, the node's drainOnSignals).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import { stopOnSignals, type Gateway } from '@easyremote/gateway';
import { currentCall, drainOnSignals, type ComputeNode } from '@easyremote/node';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { captureLogs, type LogEntry } from './support/log-capture.js';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-stop-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A signal nothing else in a test process listens for. */
const SIGNAL = 'SIGUSR2';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Cluster {
  gw: Gateway;
  node: ComputeNode;
  session: DynamicClient;
  perCall: DynamicClient;
  started: string[];
  logs: LogEntry[];
  close(): Promise<void>;
}

async function cluster(metricsPath = ':memory:'): Promise<Cluster> {
  const { entries: logs, logger } = captureLogs('info');
  const started: string[] = [];
  const gw = await startGateway({ metrics: { path: metricsPath, flushIntervalMs: 3_600_000 }, logger, startupGraceMs: 0 });
  const node = await startNode(
    gw.address,
    (n) =>
      n
        .register('slow', async (ms: number) => {
          started.push('slow');
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, ms);
            currentCall().signal.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))));
          });
          return `slept ${ms}`;
        })
        .register('ticks', async function* (count: number, everyMs: number) {
          started.push('ticks');
          for (let i = 0; i < count; i++) {
            await sleep(everyMs);
            yield i;
          }
        }),
    { nodeId: 'stop-node', telemetry: false },
  );
  const session = connect(gw.address);
  const perCall = connect(gw.address, { transport: 'unary' });
  return {
    gw,
    node,
    session,
    perCall,
    started,
    logs,
    async close() {
      session.close();
      perCall.close();
      await node.stop();
      await gw.stop({ graceMs: 0 });
    },
  };
}

async function collect(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of stream) out.push(v);
  return out;
}

const settle = <T>(p: Promise<T>) => p.then((value) => ({ value }), (error: unknown) => ({ error: error as { code?: string; message?: string } }));

describe('Gateway.stop({ graceMs })', () => {
  it('refuses new calls on every transport, lets calls in flight finish, and writes every row', async () => {
    const path = join(dir, 'grace.db');
    const c = await cluster(path);
    const unary = c.session.call('slow', [600]);
    const stream = collect(c.perCall.stream('ticks', [4, 150]));
    await waitFor('both calls to run on the node', () => c.started.length === 2);
    const t0 = Date.now();
    const stopping = c.gw.stop({ graceMs: 20_000 });
    await sleep(50);
    expect(c.gw.openCalls).toBe(2);
    const refused = await Promise.all([
      settle(c.session.call('slow', [1])),
      settle(c.perCall.call('slow', [1])),
      settle(collect(c.session.stream('ticks', [1, 1]))),
      settle(collect(c.perCall.stream('ticks', [1, 1]))),
    ]);
    for (const r of refused) {
      expect(r).toMatchObject({ error: { code: 'GATEWAY_UNAVAILABLE', retryable: true, message: expect.stringMatching(/the gateway is stopping and takes no new calls; "(slow|ticks)" was not run/) } });
    }
    expect(await unary).toBe('slept 600');
    expect(await stream).toEqual([0, 1, 2, 3]);
    await stopping;
    // It waited for the calls, not for the grace.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(c.started).toEqual(['slow', 'ticks']);
    await c.close();
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT function_name AS fn, error_code AS code FROM calls ORDER BY id').all() as Array<{ fn: string; code: string }>;
    db.close();
    expect(rows.filter((r) => r.code === '').map((r) => r.fn).sort()).toEqual(['slow', 'ticks']);
    // The client sends a call refused unrun once more (through one address there may be
    // another gateway behind it, as with nginx): two refused rows for each of the four.
    expect(rows.filter((r) => r.code === 'GATEWAY_UNAVAILABLE')).toHaveLength(8);
  });

  it('ends calls still running when the grace runs out with CANCELLED, unary and stream alike', async () => {
    const c = await cluster();
    const unary = settle(c.session.call('slow', [30_000]));
    const stream = settle(collect(c.perCall.stream('ticks', [1000, 100])));
    await waitFor('both calls to run on the node', () => c.started.length === 2);
    const t0 = Date.now();
    await c.gw.stop({ graceMs: 400 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(5_000);
    expect(await unary).toMatchObject({ error: { code: 'CANCELLED', message: expect.stringMatching(/the gateway is shutting down/) } });
    expect(await stream).toMatchObject({ error: { code: 'CANCELLED' } });
    expect(c.logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'calls still in flight after the grace are ended', calls: 2, graceMs: 400 }));
    expect(c.logs).toContainEqual(expect.objectContaining({ level: 'info', msg: 'gateway stopping', openCalls: 2, graceMs: 400 }));
    await c.close();
  });

  it('a second stop with a shorter grace cuts the wait short and returns the same promise', async () => {
    const c = await cluster();
    const unary = settle(c.session.call('slow', [30_000]));
    await waitFor('the call to run on the node', () => c.started.length === 1);
    const t0 = Date.now();
    const first = c.gw.stop({ graceMs: 60_000 });
    await sleep(100);
    const second = c.gw.stop({ graceMs: 0 });
    expect(second).toBe(first);
    await first;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await unary).toMatchObject({ error: { code: 'CANCELLED' } });
    await c.close();
  });

  it('a call waiting for its function to be registered (just after a start) is refused GATEWAY_UNAVAILABLE at once', async () => {
    const gw = await startGateway({ startupGraceMs: 60_000 });
    const client = connect(gw.address);
    try {
      const waiting = settle(client.call('not_yet', []));
      await waitFor('the call to wait at the gateway', () => gw.metrics.live.overall().calls === 0 && (gw as unknown as { intake: { awaitingCount: number } }).intake.awaitingCount === 1);
      const t0 = Date.now();
      const stopping = gw.stop({ graceMs: 30_000 });
      // Refused unrun; the client's one resend finds the gateway gone, and says so.
      expect(await waiting).toMatchObject({ error: { code: 'GATEWAY_UNAVAILABLE', retryable: true } });
      await stopping;
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      client.close();
    }
  });

  it('without graceMs, uses the shutdownGraceMs option (default 0: ends calls at once)', async () => {
    const c = await cluster();
    const unary = settle(c.session.call('slow', [30_000]));
    await waitFor('the call to run on the node', () => c.started.length === 1);
    const t0 = Date.now();
    await c.gw.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(await unary).toMatchObject({ error: { code: 'CANCELLED' } });
    await c.close();
    const gw = await startGateway({ shutdownGraceMs: 1234 });
    expect(gw.settings.shutdownGraceMs).toBe(1234);
    await gw.stop();
  });
});

describe('stopOnSignals and drainOnSignals', () => {
  it('a signal stops the gateway gracefully (status 0) and removes the listeners', async () => {
    const c = await cluster();
    const before = process.listenerCount(SIGNAL);
    const lines: string[] = [];
    const status = new Promise<number>((resolve) => stopOnSignals(c.gw, { graceMs: 20_000, signals: [SIGNAL], exit: resolve, log: (l) => lines.push(l) }));
    expect(process.listenerCount(SIGNAL)).toBe(before + 1);
    const unary = c.session.call('slow', [500]);
    await waitFor('the call to run on the node', () => c.started.length === 1);
    process.emit(SIGNAL, SIGNAL);
    await sleep(50);
    await expect(c.session.call('slow', [1])).rejects.toMatchObject({ code: 'GATEWAY_UNAVAILABLE' });
    expect(await unary).toBe('slept 500');
    expect(await status).toBe(0);
    expect(lines[0]).toMatch(/^SIGUSR2: gateway stopping: new calls refused, 1 call\(s\) in flight get up to 20000 ms to finish; send SIGUSR2 again to force$/);
    expect(process.listenerCount(SIGNAL)).toBe(before);
    await c.close();
  });

  it('a second signal forces: calls in flight are ended CANCELLED and the status is 1', async () => {
    const c = await cluster();
    const lines: string[] = [];
    const status = new Promise<number>((resolve) => stopOnSignals(c.gw, { graceMs: 60_000, signals: [SIGNAL], exit: resolve, log: (l) => lines.push(l) }));
    const unary = settle(c.session.call('slow', [30_000]));
    await waitFor('the call to run on the node', () => c.started.length === 1);
    process.emit(SIGNAL, SIGNAL);
    await sleep(100);
    process.emit(SIGNAL, SIGNAL);
    expect(await status).toBe(1);
    expect(await unary).toMatchObject({ error: { code: 'CANCELLED' } });
    expect(lines[1]).toBe('SIGUSR2 again: forcing the stop');
    await c.close();
  });

  it('the disposer removes the listeners before any signal', async () => {
    const c = await cluster();
    const before = process.listenerCount(SIGNAL);
    const dispose = stopOnSignals(c.gw, { signals: [SIGNAL], exit: false });
    dispose();
    expect(process.listenerCount(SIGNAL)).toBe(before);
    await c.close();
  });

  it("a signal drains a node: its running call's result is delivered, then status 0", async () => {
    const c = await cluster();
    const lines: string[] = [];
    const status = new Promise<number>((resolve) => drainOnSignals(c.node, { signals: [SIGNAL], exit: resolve, log: (l) => lines.push(l) }));
    const unary = c.session.call('slow', [500]);
    await waitFor('the call to run on the node', () => c.started.length === 1);
    process.emit(SIGNAL, SIGNAL);
    expect(await unary).toBe('slept 500');
    expect(await status).toBe(0);
    expect(lines[0]).toMatch(/^SIGUSR2: node stop-node draining: no new calls, 1 call\(s\) in progress or waiting finish first; send SIGUSR2 again to force$/);
    expect(c.node.isRegistered).toBe(false);
    await c.close();
  });

  it('a second signal stops the node at once: the running call is aborted, status 1', async () => {
    const c = await cluster();
    const status = new Promise<number>((resolve) => drainOnSignals(c.node, { signals: [SIGNAL], exit: resolve, log: () => undefined }));
    const unary = settle(c.session.call('slow', [30_000]));
    await waitFor('the call to run on the node', () => c.started.length === 1);
    process.emit(SIGNAL, SIGNAL);
    await sleep(100);
    process.emit(SIGNAL, SIGNAL);
    expect(await status).toBe(1);
    expect(await unary).toMatchObject({ error: { code: expect.stringMatching(/^(NODE_LOST|REMOTE_ERROR|CANCELLED)$/) } });
    await c.close();
  });
});
