// The whole example in one command (`pnpm demo`): a gateway, three node processes that
// serve the same train_model at different speeds, and a client that calls it many times.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from '@easyremote/client';
import { Gateway } from '@easyremote/gateway';
import type { TrainResult } from './trainer.js';

const CALLS = 90;
const CONCURRENCY = 6;
const NODES = [
  { id: 'rtx-4090-workstation', msPerEpoch: 2 },
  { id: 'rtx-3080-gaming-pc', msPerEpoch: 4 },
  { id: 'cloud-a100-vm', msPerEpoch: 3 },
];

const gateway = new Gateway({ port: 0, logger: { level: 'warn' } });
await gateway.start();
console.log(`gateway listening on ${gateway.address}`);

const children: ChildProcess[] = NODES.map((n) =>
  spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./node.ts', import.meta.url))], {
    // The nodes' lifecycle lines (stderr) would interleave with the table: warnings only, unless asked.
    env: { ...process.env, EASYREMOTE_LOG_LEVEL: process.env.EASYREMOTE_LOG_LEVEL ?? 'warn', GATEWAY: gateway.address, NODE_ID: n.id, MS_PER_EPOCH: String(n.msPerEpoch) },
    stdio: ['ignore', 'ignore', 'inherit'],
  }),
);
const cleanup = () => children.forEach((c) => c.kill('SIGKILL'));
process.on('exit', cleanup);

const until = Date.now() + 30_000;
while (gateway.nodes().length < NODES.length) {
  if (Date.now() > until) throw new Error('nodes did not register within 30 s');
  await new Promise((r) => setTimeout(r, 50));
}
console.log(`${NODES.length} nodes registered: ${gateway.nodes().map((n) => n.nodeId).join(', ')}`);

const client = connect(gateway.address);
const served = new Map<string, number[]>();
let next = 0;
const started = Date.now();
async function worker() {
  while (next < CALLS) {
    const i = next++;
    const t0 = performance.now();
    const result: TrainResult = await client.train_model({ samples: new Float32Array([i, i + 1, i + 2]), epochs: 5 });
    const ms = performance.now() - t0;
    served.set(result.node, [...(served.get(result.node) ?? []), ms]);
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const wall = Date.now() - started;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
console.log(`\n${CALLS} calls of train_model, ${CONCURRENCY} in flight, in ${wall} ms\n`);
console.log('node                     calls   mean ms    p50 ms    p95 ms');
for (const n of NODES) {
  const xs = served.get(n.id) ?? [];
  const mean = xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  console.log(`${n.id.padEnd(24)} ${String(xs.length).padStart(5)} ${mean.toFixed(1).padStart(9)} ${(xs.length ? pct(xs, 50) : 0).toFixed(1).padStart(9)} ${(xs.length ? pct(xs, 95) : 0).toFixed(1).padStart(9)}`);
}

client.close();
cleanup();
await gateway.stop();
process.exit(0);
