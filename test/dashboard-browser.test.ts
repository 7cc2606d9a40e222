// The dashboard in real Chromium (Debian's /usr/bin/chromium through playwright-core): a
// gateway with principals and two nodes, a client calling under load. The page must list
// both nodes, its figures must move while calls run, the drain button must be refused
// with a client token (saying why) and drain the node with an admin token; the advisor's
// alerts and recommendations must show. The page must
// raise no script error and no Content-Security-Policy violation. Screenshots go to
// test-results/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { StaticTelemetryProvider, type ComputeNode } from '@easyremote/node';
import { ROOT, startGateway, startNode, waitFor } from './support/cluster.js';
import { ok, RawLoadBalancer } from './support/load-balancer.js';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && !process.env.CI) {
  console.warn(`dashboard browser test skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it, and in CI the test runs and fails without it)`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GIB = 1024 ** 3;
const AUTH = {
  principals: [
    { name: 'fleet', token: 'fleet-node-token', role: 'node' as const },
    { name: 'viewer', token: 'viewer-client-token', role: 'client' as const },
    { name: 'ops', token: 'ops-admin-token', role: 'admin' as const },
  ],
};

describe.skipIf(!present && !process.env.CI)('the dashboard in Chromium', () => {
  let gw: Gateway;
  const nodes: ComputeNode[] = [];
  let client: DynamicClient;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];
  const load = { stop: false, ok: 0, failed: [] as string[] };
  let loadDone: Promise<unknown> = Promise.resolve();

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: .ci/run installs Debian's chromium`).toBe(true);
    // Calls take about 10 ms: thresholds of 5 ms make the advisor alert and recommend while they run.
    gw = await startGateway({ auth: AUTH, httpPort: 0, startupGraceMs: 0, heartbeatMs: 250, alerts: { intervalMs: 500, thresholds: { alertLatencyMs: 5, recommendLatencyMs: 5 } } });
    const serve = (id: string) => (n: ComputeNode) =>
      n.register('work', async (ms: number) => (await sleep(ms), id), { maxConcurrent: 4 }).register('echo', (x: unknown) => x, { maxConcurrent: 8 });
    nodes.push(await startNode(gw.address, serve('cpu-box'), { nodeId: 'cpu-box', token: 'fleet-node-token', telemetryIntervalMs: 250 }));
    const workstation = new StaticTelemetryProvider(
      { cpuCores: 16, memoryTotalBytes: 64 * GIB, gpus: [{ index: 0, model: 'RTX 4090', vramTotalBytes: 24 * GIB }] },
      { cpuPercent: 35, memoryUsedBytes: 20 * GIB, memoryTotalBytes: 64 * GIB, gpus: [{ index: 0, utilizationPercent: 72, vramUsedBytes: 9 * GIB, vramTotalBytes: 24 * GIB }] },
    );
    nodes.push(await startNode(gw.address, serve('gpu-box'), { nodeId: 'gpu-box', token: 'fleet-node-token', telemetry: workstation, telemetryIntervalMs: 250 }));
    client = connect(gw.address, { token: 'viewer-client-token' });

    profile = mkdtempSync(join(tmpdir(), 'easyremote-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1300 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused request is logged by Chromium itself; the page shows the refusal, which the test checks.
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (401|403)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('dialog', (d) => void d.accept());
  }, 90_000);

  afterAll(async () => {
    load.stop = true;
    await loadDone;
    await context?.close();
    client?.close();
    for (const n of nodes) await n.stop();
    await gw?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const text = (selector: string) => page.locator(selector).first().innerText();
  const count = async (selector: string) => Number(await text(selector));

  it('asks for a token on a gateway with principals, then lists the nodes with their telemetry', async () => {
    const response = await page.goto(`http://127.0.0.1:${gw.httpPort}/`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect.poll(() => text('[data-testid=status]'), { timeout: 10_000 }).toBe('refused');
    expect(await text('[data-testid=status-message]')).toContain('missing client token');

    await page.fill('[data-testid=token]', 'viewer-client-token');
    await page.click('[data-testid=use-token]');
    await expect.poll(() => text('[data-testid=status]'), { timeout: 10_000 }).toBe('live');
    await page.locator('tr[data-node="cpu-box"]').waitFor({ timeout: 10_000 });
    await page.locator('tr[data-node="gpu-box"]').waitFor({ timeout: 10_000 });
    expect(await text('tr[data-node="gpu-box"] [data-field=health]')).toBe('healthy');
    // The GPU workstation's figures, as its telemetry reports them.
    await expect.poll(() => text('tr[data-node="gpu-box"]'), { timeout: 10_000 }).toContain('GPU0 72% · 9.0 GiB / 24 GiB');
    const row = await text('tr[data-node="gpu-box"]');
    expect(row).toContain('35%');
    expect(row).toContain('20 GiB / 64 GiB');
    expect(await text('tr[data-node="gpu-box"] [data-field=load]')).toBe('0 / 12');
    expect(await text('[data-testid=card-nodes]')).toContain('2 / 2');
  });

  it('marks a look-aside backend as one, with its direct address', async () => {
    // Registered over the LoadBalancer service, kept alive by reports while the page is read.
    const lb = new RawLoadBalancer(gw.address, 'fleet-node-token');
    ok(await lb.register({ id: 'img-backend', address: '127.0.0.1', port: 7009, services: ['resize'] }));
    const keepAlive = setInterval(() => void lb.report({ id: 'img-backend', load: 0.1 }), 150);
    try {
      await page.locator('tr[data-node="img-backend"]').waitFor({ timeout: 10_000 });
      expect(await text('tr[data-node="img-backend"] [data-field=kind]')).toBe('backend');
      expect(await text('tr[data-node="img-backend"] [data-field=direct]')).toBe('direct 127.0.0.1:7009');
      // Compute nodes carry no such mark.
      expect(await page.locator('tr[data-node="cpu-box"] [data-field=kind]').count()).toBe(0);
    } finally {
      clearInterval(keepAlive);
      ok(await lb.deregister('img-backend'));
      lb.close();
    }
    await page.locator('tr[data-node="img-backend"]').waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('moves its figures while a client calls', async () => {
    const before = { cpu: await count('tr[data-node="cpu-box"] [data-field=total-calls]'), gpu: await count('tr[data-node="gpu-box"] [data-field=total-calls]') };
    const worker = async () => {
      for (let i = 0; i < 5_000 && !load.stop; i++) {
        await client.call('work', [10]).then(
          () => load.ok++,
          (e: Error) => load.failed.push(e.message),
        );
      }
    };
    loadDone = Promise.all([worker(), worker(), worker(), worker()]);

    // Calls since start, per node, and the call rate of the last second rise while calls run.
    await expect.poll(() => count('tr[data-node="cpu-box"] [data-field=total-calls]'), { timeout: 15_000 }).toBeGreaterThan(before.cpu + 20);
    await expect.poll(() => count('tr[data-node="gpu-box"] [data-field=total-calls]'), { timeout: 15_000 }).toBeGreaterThan(before.gpu + 20);
    const first = await count('tr[data-node="cpu-box"] [data-field=total-calls]');
    await expect.poll(() => count('tr[data-node="cpu-box"] [data-field=total-calls]'), { timeout: 15_000 }).toBeGreaterThan(first);
    await expect.poll(async () => Number((await text('[data-testid=card-rate] b')).replace(/[^0-9.]/g, '')), { timeout: 15_000 }).toBeGreaterThan(10);
    await expect.poll(async () => Number((await text('article[data-function=work] [data-field=rate]')).split(' ')[0]), { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(async () => Number((await text('article[data-function=work] [data-field=calls]')).split(' ')[0]), { timeout: 10_000 }).toBeGreaterThan(20);
    await expect.poll(() => text('[data-testid=distribution]'), { timeout: 10_000 }).toMatch(/cpu-box[\s\S]*calls/);
    await expect.poll(() => text('[data-testid=alerts]'), { timeout: 10_000 }).toMatch(/average latency \d+ ms is above 5 ms/);
    await expect.poll(() => text('[data-testid=recommendations]'), { timeout: 10_000 }).toMatch(/above 5 ms: consider the latency_based strategy/);
    // The chart has a canvas and a few seconds of points behind it.
    await page.locator('article[data-function=work] canvas').first().waitFor({ timeout: 10_000 });
    await sleep(4_000);
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard.png'), fullPage: true });
    expect(load.failed).toEqual([]);
  }, 60_000);

  it('refuses the drain button without an admin token, and says so', async () => {
    await page.locator('tr[data-node="gpu-box"] [data-testid=drain]').click();
    await expect.poll(() => text('[data-testid=notice]'), { timeout: 10_000 }).toContain('Drain refused (403): viewer may not drain nodes: it needs the admin role');
    expect(gw.nodes().find((n) => n.nodeId === 'gpu-box')?.state).toBe('active');
  });

  it('drains the node with an admin token', async () => {
    await page.fill('[data-testid=token]', 'ops-admin-token');
    await page.click('[data-testid=use-token]');
    await expect.poll(() => text('[data-testid=status]'), { timeout: 10_000 }).toBe('live');
    await page.locator('tr[data-node="gpu-box"] [data-testid=drain]').click();
    await expect.poll(() => text('[data-testid=notice]'), { timeout: 10_000 }).toBe('Node gpu-box is draining.');
    // The node finishes its calls and leaves; the page stops listing it and the calls go on elsewhere.
    await waitFor('gpu-box to leave the gateway', () => !gw.nodes().some((n) => n.nodeId === 'gpu-box'), 15_000);
    await page.locator('tr[data-node="gpu-box"]').waitFor({ state: 'detached', timeout: 10_000 });
    const served = await count('tr[data-node="cpu-box"] [data-field=total-calls]');
    await expect.poll(() => count('tr[data-node="cpu-box"] [data-field=total-calls]'), { timeout: 15_000 }).toBeGreaterThan(served);
    await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard-drained.png'), fullPage: true });
    load.stop = true;
    await loadDone;
    expect(load.failed).toEqual([]);
    expect(problems).toEqual([]);
  }, 60_000);
});
