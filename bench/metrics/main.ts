// Cost of recording every call in SQLite: throughput at saturation with metrics on versus
// off (interleaved runs, same node and client), and database growth per million calls.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@easyremote/client';
import { MetricsStore } from '../../packages/gateway/src/metrics/store.js';
import { machine, spawnTs, table, writeSection } from '../lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const IN_FLIGHT = 64;
const ROUNDS = 3;
const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-metrics-'));

async function saturate(address: string): Promise<number> {
  const client = new Client(address);
  const run = async (seconds: number) => {
    let done = 0;
    const until = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < until) {
          await client.call('echo', [{ id: 1, name: 'payload' }]);
          done++;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1000);
  };
  await run(1); // warm-up
  const rate = await run(SECONDS);
  client.close();
  return rate;
}

async function measure(mode: 'on' | 'off', round: number): Promise<number> {
  const env: Record<string, string> = mode === 'off' ? { METRICS: 'off' } : { METRICS_PATH: join(dir, `calls-${round}.db`) };
  const gw = await spawnTs('bench/metrics/gateway.ts', env);
  const address = `127.0.0.1:${gw.line.split(' ')[1]}`;
  const node = await spawnTs('bench/overhead/node.ts', { GATEWAY: address });
  const rate = await saturate(address);
  node.child.kill('SIGKILL');
  gw.child.kill('SIGTERM');
  await new Promise((r) => gw.child.once('exit', r));
  return rate;
}

const rates: Record<'on' | 'off', number[]> = { on: [], off: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) rates[mode].push(await measure(mode, round));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const on = median(rates.on);
const off = median(rates.off);

// Growth: a million realistic rows through the store's own batching, on a fresh file.
const growthPath = join(dir, 'growth.db');
const store = new MetricsStore({ path: growthPath, flushIntervalMs: 3_600_000, maxBufferRows: 1_100_000 });
const ROWS = 1_000_000;
const t0 = performance.now();
for (let i = 0; i < ROWS; i++) {
  store.record({
    finishedAt: Date.now(),
    functionName: ['train_model', 'infer', 'resize_image'][i % 3]!,
    nodeId: `gpu-node-${i % 6}`,
    strategy: 'least_connections',
    client: `127.0.0.1:${40000 + (i % 50)}`,
    queueWaitMs: 0.05,
    execMs: 3 + (i % 100) / 10,
    totalMs: 3.4 + (i % 100) / 10,
    success: i % 50 !== 0,
    errorCode: i % 50 === 0 ? 'REMOTE_ERROR' : '',
    cached: i % 10 === 0,
    requestBytes: 120 + (i % 30),
    responseBytes: 64,
    attempts: 1,
  });
  if (i % 100_000 === 99_999) store.flush();
}
store.close();
const writeMs = performance.now() - t0;
const bytes = statSync(growthPath).size;
rmSync(dir, { recursive: true, force: true });

const md = table(
  ['metrics', 'calls/s (median of 3)', 'runs', 'ratio to off'],
  [
    ['off', Math.round(off), rates.off.map(Math.round).join(', '), '1.00'],
    ['on (SQLite file)', Math.round(on), rates.on.map(Math.round).join(', '), (on / off).toFixed(3)],
  ],
);
console.log(md);
console.log(`growth: ${(bytes / 2 ** 20).toFixed(1)} MiB per ${ROWS} rows (${(bytes / ROWS).toFixed(0)} B/row), written in ${(writeMs / 1000).toFixed(1)} s`);
writeSection(
  'metrics',
  `## Cost of call metrics (\`pnpm bench:metrics\`)

Echo calls at saturation (${IN_FLIGHT} in flight, ${SECONDS} s after a 1 s warm-up) through a gateway process whose metrics are off, or on with the embedded SQLite file (one row per call, buffered and written in one transaction per flush interval). Three rounds, on and off interleaved, fresh gateway and node processes each run. Machine: ${machine()}; client, gateway and node share its cores.

${md}

Metrics cost **${((1 - on / off) * 100).toFixed(1)}%** of throughput at saturation (target: at most 5%; runs vary by a few percent on this shared machine, see the individual runs).

Database growth: **${(bytes / 2 ** 20).toFixed(0)} MiB per million calls** (${(bytes / ROWS).toFixed(0)} bytes per row, three indexes included), measured by writing ${ROWS.toLocaleString('en')} realistic rows through the store's batching into a fresh file (${(writeMs / 1000).toFixed(1)} s, ${((writeMs * 1000) / ROWS).toFixed(1)} µs per row, off the call path). Retention (\`metrics.retention\`: \`maxAgeMs\`, \`maxRows\`) bounds it.`,
);
process.exit(0);
