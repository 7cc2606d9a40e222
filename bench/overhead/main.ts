// Overhead of routing through the gateway: the same client calls an echo function on a
// plain grpc-js server (direct) and through gateway → node (routed), at 1, 16 and 64 in flight.
import { performance } from 'node:perf_hooks';
import { Client } from '@easyremote/client';
import { machine, percentile, spawnTs, stopAll, table, writeSection } from '../lib.js';

const LEVELS = [1, 16, 64];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PAYLOAD = { id: 42, text: 'hello', values: [1, 2, 3] };

async function measure(client: Client, inFlight: number, seconds: number) {
  const lat: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await client.call('echo', [PAYLOAD]);
        lat.push(performance.now() - t0);
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { rate: done / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

const direct = await spawnTs('bench/overhead/direct-server.ts');
const directPort = direct.line.split(' ')[1]!;
const gw = await spawnTs('bench/overhead/gateway.ts');
const gwAddress = `127.0.0.1:${gw.line.split(' ')[1]}`;
await spawnTs('bench/overhead/node.ts', { GATEWAY: gwAddress });

const clients = { direct: new Client(`127.0.0.1:${directPort}`), routed: new Client(gwAddress) };
// Warm up both paths (JIT, connections).
for (const c of Object.values(clients)) await measure(c, 16, 1);

const rows: Array<Array<string | number>> = [];
const figures: Record<string, unknown> = {};
for (const level of LEVELS) {
  // Interleave so drift in machine load hits both sides alike.
  const a = await measure(clients.direct, level, SECONDS);
  const b = await measure(clients.routed, level, SECONDS);
  figures[level] = { direct: a, routed: b };
  rows.push([
    level,
    Math.round(a.rate),
    Math.round(b.rate),
    (b.rate / a.rate).toFixed(2),
    a.p50.toFixed(3),
    b.p50.toFixed(3),
    a.p99.toFixed(3),
    b.p99.toFixed(3),
  ]);
}
const md = table(['in flight', 'direct calls/s', 'routed calls/s', 'routed/direct throughput', 'direct p50 ms', 'routed p50 ms', 'direct p99 ms', 'routed p99 ms'], rows);
console.log(md);
writeSection(
  'overhead',
  `## Gateway overhead (\`pnpm bench:overhead\`)

An echo function (a small object) called by the same \`@easyremote/client\` on (a) a plain grpc-js unary server in its own process (direct) and (b) through the gateway to a compute node, each in its own process (routed: two hops, one of them over the node's bidirectional stream; the gateway as shipped: default strategy smart_adaptive, every call recorded in an SQLite file). ${SECONDS} s per cell after a 1 s warm-up; direct and routed runs interleaved. Machine: ${machine()}; client, gateway and node share its cores.

${md}

The routed path adds one hop, so about half the direct throughput and twice its latency is the floor.`,
);
for (const c of Object.values(clients)) c.close();
stopAll();
process.exit(0);
