import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/metrics/call-record.js';
import { errorRates, nodeStats, windowSummary } from '../../src/metrics/stats.js';
import { MetricsStore } from '../../src/metrics/store.js';
import { callRecord, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
let store: MetricsStore;

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  store = new MetricsStore({ path: join(dir, 'stats.db'), flushIntervalMs: 3_600_000 });
});

afterEach(() => {
  store.close();
  cleanup();
});

function write(rows: CallRecord[]): void {
  for (const r of rows) store.record(r);
  store.flush();
}

// A small data set whose figures are worked out by hand below. Window: (0, 10_000].
function handDataSet(): CallRecord[] {
  const rows: CallRecord[] = [];
  let t = 100;
  const add = (o: Partial<CallRecord>) => rows.push(callRecord({ finishedAt: (t += 100), ...o }));
  // node a, function f, round_robin: exec 10..50, total = exec + 5; the 50 ms call failed without a code.
  for (const exec of [10, 20, 30, 40, 50]) {
    add({ nodeId: 'a', functionName: 'f', strategy: 'round_robin', caller: 'alice', execMs: exec, totalMs: exec + 5, success: exec !== 50, errorCode: '' });
  }
  // node b, function f, least_load: exec 100, 200, 300, total = exec + 10; the 300 ms call hit its deadline.
  for (const exec of [100, 200, 300]) {
    add({
      nodeId: 'b',
      functionName: 'f',
      strategy: 'least_load',
      caller: 'bob',
      execMs: exec,
      totalMs: exec + 10,
      success: exec !== 300,
      errorCode: exec === 300 ? 'DEADLINE_EXCEEDED' : '',
    });
  }
  add({ nodeId: 'b', functionName: 'g', strategy: 'least_load', execMs: 5, totalMs: 8 });
  // A cache hit (no node, no strategy) and an unknown function.
  add({ nodeId: '', functionName: 'f', strategy: '', execMs: 0, totalMs: 1, cached: true });
  add({ nodeId: '', functionName: 'missing', strategy: '', execMs: 0, totalMs: 2, success: false, errorCode: 'NOT_FOUND' });
  // Outside (0, 10_000]: exactly at since, and just after until.
  rows.push(callRecord({ finishedAt: 0, nodeId: 'a', execMs: 9_999 }));
  rows.push(callRecord({ finishedAt: 10_001, nodeId: 'c', execMs: 9_999 }));
  return rows;
}

describe('statistics over a hand-computed data set', () => {
  it('matches per node, per function, per strategy, distribution, errors and the summary', () => {
    write(handDataSet());
    const s = store.statistics({ since: 0, until: 10_000 });

    expect(s.summary).toEqual({
      since: 0,
      until: 10_000,
      calls: 11,
      successes: 8,
      failures: 3,
      successRate: 8 / 11,
      cachedCalls: 1,
      requestsPerSecond: 1.1,
      // totals sorted: 1 2 8 15 25 35 45 55 110 210 310
      avgTotalMs: 816 / 11,
      p50TotalMs: 35, // rank ceil(5.5) = 6
      p95TotalMs: 310, // rank ceil(10.45) = 11
      p99TotalMs: 310,
    });

    expect(s.nodes).toEqual([
      {
        nodeId: 'a',
        calls: 5,
        successes: 4,
        failures: 1,
        successRate: 0.8,
        cachedCalls: 0,
        executedCalls: 5,
        avgExecMs: 30,
        p50ExecMs: 30, // rank ceil(2.5) = 3
        p95ExecMs: 50, // rank ceil(4.75) = 5
        p99ExecMs: 50,
        avgTotalMs: 35,
      },
      {
        nodeId: 'b',
        calls: 4,
        successes: 3,
        failures: 1,
        successRate: 0.75,
        cachedCalls: 0,
        executedCalls: 4,
        avgExecMs: 151.25, // 5 100 200 300
        p50ExecMs: 100, // rank 2
        p95ExecMs: 300, // rank ceil(3.8) = 4
        p99ExecMs: 300,
        avgTotalMs: 159.5, // 8 110 210 310
      },
    ]);

    expect(s.functions).toEqual([
      {
        functionName: 'f',
        calls: 9,
        successes: 7,
        failures: 2,
        successRate: 7 / 9,
        cachedCalls: 1,
        // The cache hit is left out of the execution figures: 10 20 30 40 50 100 200 300.
        executedCalls: 8,
        avgExecMs: 93.75,
        p50ExecMs: 40, // rank 4
        p95ExecMs: 300, // rank ceil(7.6) = 8
        p99ExecMs: 300,
        avgTotalMs: 806 / 9,
      },
      {
        functionName: 'g',
        calls: 1,
        successes: 1,
        failures: 0,
        successRate: 1,
        cachedCalls: 0,
        executedCalls: 1,
        avgExecMs: 5,
        p50ExecMs: 5,
        p95ExecMs: 5,
        p99ExecMs: 5,
        avgTotalMs: 8,
      },
      {
        functionName: 'missing',
        calls: 1,
        successes: 0,
        failures: 1,
        successRate: 0,
        cachedCalls: 0,
        executedCalls: 0,
        avgExecMs: 0,
        p50ExecMs: 0,
        p95ExecMs: 0,
        p99ExecMs: 0,
        avgTotalMs: 2,
      },
    ]);

    expect(s.strategies).toEqual([
      { strategy: 'round_robin', calls: 5, successes: 4, successRate: 0.8, avgTotalMs: 35, p50TotalMs: 35, p95TotalMs: 55, p99TotalMs: 55 },
      { strategy: 'least_load', calls: 4, successes: 3, successRate: 0.75, avgTotalMs: 159.5, p50TotalMs: 110, p95TotalMs: 310, p99TotalMs: 310 },
    ]);

    // Per principal; the anonymous principal's calls ('') are left out.
    expect(s.callers).toEqual([
      { caller: 'alice', calls: 5, successes: 4, failures: 1, successRate: 0.8, avgTotalMs: 35, p50TotalMs: 35, p95TotalMs: 55, p99TotalMs: 55 },
      { caller: 'bob', calls: 3, successes: 2, failures: 1, successRate: 2 / 3, avgTotalMs: 210, p50TotalMs: 210, p95TotalMs: 310, p99TotalMs: 310 },
    ]);

    expect(s.distribution).toEqual([
      { nodeId: 'a', calls: 5, share: 5 / 9 },
      { nodeId: 'b', calls: 4, share: 4 / 9 },
    ]);

    expect(s.errors).toEqual([
      { code: 'DEADLINE_EXCEEDED', count: 1, rate: 1 / 11 },
      { code: 'NOT_FOUND', count: 1, rate: 1 / 11 },
      { code: 'UNKNOWN', count: 1, rate: 1 / 11 },
    ]);
  });

  it('restricts every figure to one function on request', () => {
    write(handDataSet());
    const window = { since: 0, until: 10_000, functionName: 'g' };
    expect(nodeStats(store.database, window).map((n) => [n.nodeId, n.calls])).toEqual([['b', 1]]);
    expect(windowSummary(store.database, window).calls).toBe(1);
    expect(errorRates(store.database, window)).toEqual([]);
  });

  it('gives zeros for an empty window', () => {
    write(handDataSet());
    const s = store.statistics({ since: 20_000, until: 30_000 });
    expect(s.summary).toMatchObject({ calls: 0, successRate: 0, requestsPerSecond: 0, p99TotalMs: 0 });
    expect(s.nodes).toEqual([]);
    expect(s.errors).toEqual([]);
  });

  it('defaults to the hour before the clock', () => {
    const now = 10_000_000;
    store.close();
    store = new MetricsStore({ path: join(dir, 'clock.db'), flushIntervalMs: 3_600_000, clock: () => now });
    write([callRecord({ finishedAt: now - 3_600_000 }), callRecord({ finishedAt: now - 3_599_999 }), callRecord({ finishedAt: now })]);
    const s = store.statistics();
    expect(s.summary.calls).toBe(2);
    expect(s.summary.requestsPerSecond).toBeCloseTo(2 / 3600, 12);
  });
});

describe('nearest-rank percentiles', () => {
  it('picks rank ceil(p/100 * n) for 1..200', () => {
    // Inserted out of order so the SQL has to sort.
    const values = Array.from({ length: 200 }, (_, i) => ((i * 73) % 200) + 1);
    write(values.map((v, i) => callRecord({ finishedAt: i + 1, nodeId: 'n', execMs: v })));
    const [n] = nodeStats(store.database, { since: 0, until: 1_000 });
    expect(n).toMatchObject({ executedCalls: 200, p50ExecMs: 100, p95ExecMs: 190, p99ExecMs: 198, avgExecMs: 100.5 });
  });

  it('agrees with a reference implementation on pseudo-random data', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const byNode = new Map<string, number[]>();
    const rows: CallRecord[] = [];
    for (let i = 0; i < 900; i++) {
      const nodeId = `n${Math.floor(random() * 3)}`;
      const execMs = Math.round(random() * 100_000) / 100;
      rows.push(callRecord({ finishedAt: i + 1, nodeId, execMs }));
      byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), execMs]);
    }
    write(rows);
    const reference = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((p * xs.length) / 100) - 1];
    for (const n of nodeStats(store.database, { since: 0, until: 1_000 })) {
      const xs = byNode.get(n.nodeId)!;
      expect(n.executedCalls).toBe(xs.length);
      expect(n.p50ExecMs).toBe(reference(xs, 50));
      expect(n.p95ExecMs).toBe(reference(xs, 95));
      expect(n.p99ExecMs).toBe(reference(xs, 99));
    }
  });
});
