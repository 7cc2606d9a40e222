import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AlertLog,
  evaluateAlerts,
  imbalance,
  optimisationReport,
  type Alert,
  type AlertCondition,
  type NodeFigures,
} from '../../src/metrics/advisor.js';

const node = (nodeId: string, utilisation: number, healthy = true, load?: number): NodeFigures => ({ nodeId, utilisation, healthy, ...(load === undefined ? {} : { load }) });

describe('imbalance', () => {
  it('is the coefficient of variation of the figures', () => {
    expect(imbalance([0.5, 0.5, 0.5])).toBe(0);
    expect(imbalance([0.9, 0.1])).toBeCloseTo(0.8, 12); // mean 0.5, sd 0.4
    expect(imbalance([0.8, 0.2, 0.5])).toBeCloseTo(Math.sqrt(0.06) / 0.5, 12);
    expect(imbalance([10, 30])).toBeCloseTo(0.5, 12); // scale-free: in-flight counts read the same
  });

  it('is 0 for one node, or a nearly idle cluster', () => {
    expect(imbalance([0.9])).toBe(0);
    expect(imbalance([0.04, 0, 0])).toBe(0);
    expect(imbalance([0.04, 0, 0], 0.01)).toBeGreaterThan(1);
  });
});

describe('optimisationReport', () => {
  it('recommends resource_aware above 0.3 utilisation imbalance, counting healthy nodes only', () => {
    const uneven = optimisationReport({ nodes: [node('a', 0.8), node('b', 0.2), node('c', 0.5)], averageLatencyMs: 100 });
    expect(uneven.recommendations).toHaveLength(1);
    expect(uneven.recommendations[0]).toMatchObject({ type: 'load_distribution', suggestedStrategy: 'resource_aware', threshold: 0.3 });
    expect(uneven.recommendations[0]!.message).toContain('resource_aware');

    const even = optimisationReport({ nodes: [node('a', 0.5), node('b', 0.45), node('c', 0.55), node('dead', 0, false)], averageLatencyMs: 100 });
    expect(even.recommendations).toEqual([]);
    expect(even).toMatchObject({ healthyNodes: 3, unhealthyNodes: 1 });
  });

  it('recommends latency_based strictly above 500 ms', () => {
    const nodes = [node('a', 0.5)];
    expect(optimisationReport({ nodes, averageLatencyMs: 500 }).recommendations).toEqual([]);
    const slow = optimisationReport({ nodes, averageLatencyMs: 501 });
    expect(slow.recommendations).toEqual([
      expect.objectContaining({ type: 'latency_optimization', suggestedStrategy: 'latency_based', value: 501, threshold: 500 }),
    ]);
  });

  it('takes configured thresholds and does not suggest the strategy in use', () => {
    const figures = { nodes: [node('a', 0.6), node('b', 0.4)], averageLatencyMs: 300 }; // imbalance 0.2
    expect(optimisationReport(figures).recommendations).toEqual([]);
    const strict = optimisationReport(figures, { recommendImbalance: 0.1, recommendLatencyMs: 200 });
    expect(strict.recommendations.map((r) => r.suggestedStrategy)).toEqual(['resource_aware', 'latency_based']);
    const inUse = optimisationReport({ ...figures, currentStrategy: 'latency_based' }, { recommendImbalance: 0.1, recommendLatencyMs: 200 });
    expect(inUse.recommendations.map((r) => r.suggestedStrategy)).toEqual(['resource_aware']);
  });
});

describe('evaluateAlerts', () => {
  it('raises one alert per unhealthy node, critical when none is healthy', () => {
    const some = evaluateAlerts({ nodes: [node('a', 0.5), node('b', 0.5, false), node('c', 0.5, false)], averageLatencyMs: 10 });
    expect(some.map((a) => [a.kind, a.subject, a.severity])).toEqual([
      ['node_unhealthy', 'b', 'warning'],
      ['node_unhealthy', 'c', 'warning'],
    ]);
    const all = evaluateAlerts({ nodes: [node('a', 0, false)], averageLatencyMs: 10 });
    expect(all.map((a) => a.severity)).toEqual(['critical']);
  });

  it('alerts on load imbalance above 0.5 using load, or utilisation when no load is given', () => {
    // loads 1 and 3: mean 2, sd 1, imbalance 0.5: not above.
    expect(evaluateAlerts({ nodes: [node('a', 0.5, true, 1), node('b', 0.5, true, 3)], averageLatencyMs: 10 })).toEqual([]);
    const uneven = evaluateAlerts({ nodes: [node('a', 0.5, true, 1), node('b', 0.5, true, 5)], averageLatencyMs: 10 });
    expect(uneven).toEqual([expect.objectContaining({ kind: 'load_imbalance', subject: '*', threshold: 0.5 })]);
    expect(uneven[0]!.value).toBeCloseTo(2 / 3, 12);
    expect(evaluateAlerts({ nodes: [node('a', 0.9), node('b', 0.1)], averageLatencyMs: 10 }).map((a) => a.kind)).toEqual(['load_imbalance']);
  });

  it('alerts on average latency above 1 s, with configurable thresholds', () => {
    const nodes = [node('a', 0.5)];
    expect(evaluateAlerts({ nodes, averageLatencyMs: 1_000 })).toEqual([]);
    expect(evaluateAlerts({ nodes, averageLatencyMs: 1_200 })).toEqual([
      expect.objectContaining({ kind: 'high_latency', subject: '*', value: 1_200, threshold: 1_000, message: 'average latency 1200 ms is above 1000 ms' }),
    ]);
    expect(evaluateAlerts({ nodes, averageLatencyMs: 300 }, { alertLatencyMs: 250 }).map((a) => a.kind)).toEqual(['high_latency']);
  });
});

const condition = (kind: AlertCondition['kind'], subject: string, value = 1): AlertCondition => ({
  kind,
  subject,
  severity: 'warning',
  message: `${kind} ${subject}`,
  value,
  threshold: 0,
});

describe('AlertLog', () => {
  it('de-duplicates an active alert and emits it once', () => {
    let now = 100;
    const log = new AlertLog({ clock: () => now });
    const emitted: Alert[] = [];
    log.on('alert', (a) => emitted.push(a));
    expect(log.raise(condition('high_latency', '*', 1_500)).isNew).toBe(true);
    now = 200;
    const again = log.raise(condition('high_latency', '*', 1_700));
    expect(again.isNew).toBe(false);
    expect(emitted).toHaveLength(1);
    expect(log.list()).toEqual([
      expect.objectContaining({ kind: 'high_latency', subject: '*', raisedAt: 100, lastSeenAt: 200, occurrences: 2, value: 1_700, resolvedAt: null }),
    ]);
    // Another subject is another alert.
    log.raise(condition('node_unhealthy', 'a'));
    expect(emitted.map((a) => a.subject)).toEqual(['*', 'a']);
  });

  it('resolves absent conditions on update and raises them anew when they return', () => {
    let now = 0;
    const log = new AlertLog({ clock: () => now });
    const resolved: Alert[] = [];
    log.on('resolved', (a) => resolved.push(a));
    expect(log.update([condition('node_unhealthy', 'a'), condition('node_unhealthy', 'b')])).toHaveLength(2);
    now = 10;
    expect(log.update([condition('node_unhealthy', 'b')])).toEqual([]);
    expect(resolved.map((a) => [a.subject, a.resolvedAt])).toEqual([['a', 10]]);
    expect(log.active().map((a) => a.subject)).toEqual(['b']);
    now = 20;
    const back = log.update([condition('node_unhealthy', 'a'), condition('node_unhealthy', 'b')]);
    expect(back.map((a) => [a.subject, a.raisedAt])).toEqual([['a', 20]]);
    expect(log.list().map((a) => [a.subject, a.resolvedAt])).toEqual([
      ['a', null],
      ['b', null],
      ['a', 10],
    ]);
  });

  it('keeps only the last N alerts, newest first', () => {
    const log = new AlertLog({ maxAlerts: 3 });
    for (const s of ['a', 'b', 'c', 'd', 'e']) log.raise(condition('node_unhealthy', s));
    expect(log.list().map((a) => a.subject)).toEqual(['e', 'd', 'c']);
    // Evicted from the list but still active: not raised again.
    expect(log.raise(condition('node_unhealthy', 'a')).isNew).toBe(false);
  });

  it('rejects a webhook URL that is not http(s)', () => {
    expect(() => new AlertLog({ webhookUrl: 'ftp://example.invalid/x' })).toThrow(/http\(s\) URL/);
  });
});

describe('AlertLog webhook', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  async function listen(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  }

  it('POSTs each new alert as JSON, once', async () => {
    const received: Array<{ method: string | undefined; url: string | undefined; type: string | undefined; body: unknown }> = [];
    const url = await listen((req, body, res) => {
      received.push({ method: req.method, url: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(204).end();
    });
    const log = new AlertLog({ webhookUrl: url, clock: () => 5 });
    log.raise(condition('high_latency', '*', 1_500));
    log.raise(condition('high_latency', '*', 1_600)); // duplicate: no POST
    log.raise(condition('node_unhealthy', 'a'));
    await log.drain();
    expect(log.webhookStats()).toEqual({ sent: 2, failed: 0, pending: 0, lastError: null });
    expect(received).toHaveLength(2);
    expect(received[0]).toEqual({
      method: 'POST',
      url: '/hook',
      type: 'application/json',
      body: { kind: 'high_latency', subject: '*', severity: 'warning', message: 'high_latency *', value: 1_500, threshold: 0, id: 1, raisedAt: 5, lastSeenAt: 5, occurrences: 1, resolvedAt: null },
    });
    expect((received[1]!.body as Alert).subject).toBe('a');
  });

  it('counts a failed POST and never throws', async () => {
    const url = await listen((_req, _body, res) => res.writeHead(500).end('no'));
    const log = new AlertLog({ webhookUrl: url });
    expect(() => log.raise(condition('node_unhealthy', 'a'))).not.toThrow();
    await log.drain();
    expect(log.webhookStats()).toMatchObject({ sent: 0, failed: 1, lastError: 'webhook answered HTTP 500' });

    // Nothing listening on the port any more.
    const server = servers.pop()!;
    await new Promise<void>((r) => server.close(() => r()));
    log.raise(condition('node_unhealthy', 'b'));
    await log.drain();
    expect(log.webhookStats()).toMatchObject({ sent: 0, failed: 2 });
  });
});
