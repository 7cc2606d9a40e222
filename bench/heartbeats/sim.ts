// COUNT simulated compute nodes in one process, each a real ComputeNode with its own stream
// to the gateway, sending heartbeats at the interval the gateway asks for (the default)
// with fixed telemetry: CPU, memory, one GPU, three functions with in-flight counts.
//
// env: GATEWAY host:port, COUNT, FIRST (index of the first node), SEPARATE=1 to give each
// node its own HTTP/2 connection (otherwise grpc-js pools one connection per process),
// SPREAD_MS (starts are spread over this long, so heartbeat phases spread over the interval).
// Prints `ready N` once all are registered; on SIGUSR2 a `simstats` line; exits on SIGTERM.
import { ComputeNode } from '@easyremote/node';
// Not exported from '@easyremote/node' (index.ts exports ComputeNode, remote, context, options, Backoff).
import { StaticTelemetryProvider } from '@easyremote/node';

const GATEWAY = process.env.GATEWAY!;
const COUNT = Number(process.env.COUNT ?? 500);
const FIRST = Number(process.env.FIRST ?? 0);
const SEPARATE = process.env.SEPARATE === '1';
const SPREAD_MS = Number(process.env.SPREAD_MS ?? 2000);

const GiB = 2 ** 30;
const FUNCTIONS = ['train_model', 'preprocess', 'predict'];
const stats = { registered: 0, disconnected: 0, refused: 0, errors: 0, lastError: '' };

function makeNode(i: number): ComputeNode {
  const telemetry = new StaticTelemetryProvider(
    { cpuCores: 16, memoryTotalBytes: 64 * GiB, gpus: [{ index: 0, model: 'NVIDIA A100-SXM4-40GB', vramTotalBytes: 40 * GiB }] },
    {
      cpuPercent: 20 + (i % 60) + 0.25,
      memoryUsedBytes: Math.round((18.5 + (i % 20)) * GiB),
      memoryTotalBytes: 64 * GiB,
      gpus: [{ index: 0, utilizationPercent: 40 + (i % 50), vramUsedBytes: Math.round((9.75 + (i % 25)) * GiB), vramTotalBytes: 40 * GiB }],
    },
  );
  const node = new ComputeNode({
    gateway: GATEWAY,
    nodeId: `sim-${String(i).padStart(4, '0')}`,
    telemetry,
    labels: { zone: `zone-${i % 4}` },
    // grpc-js shares a subchannel (one HTTP/2 connection) among channels with equal
    // options to one address; a local pool per channel forces a connection per node.
    // ComputeNode gives each node its own connection; 'shared' mode undoes that to compare.
    channelOptions: { 'grpc.use_local_subchannel_pool': SEPARATE ? 1 : 0 },
  });
  for (const name of FUNCTIONS) node.register(name, async () => null, { maxConcurrent: 8 });
  node.on('registered', () => stats.registered++);
  node.on('disconnected', () => stats.disconnected++);
  node.on('refused', () => stats.refused++);
  node.on('error', (e) => {
    stats.errors++;
    stats.lastError = e.message;
  });
  return node;
}

/**
 * No calls run here, so the in-flight counts would all be zero, which protobuf leaves off
 * the wire. Give each function a fixed non-zero count so heartbeats carry real-sized
 * FunctionLoad entries (benchmark only: reaches into the node's call runner).
 */
function fakeInFlight(node: ComputeNode, i: number): void {
  const fns = (node as unknown as { runner?: { functions?: Array<{ owner?: { running: number } }> } }).runner?.functions;
  if (!fns?.length) throw new Error('fakeInFlight: the node keeps its functions elsewhere now; update this benchmark');
  let k = 0;
  for (const f of fns) if (f.owner && typeof f.owner.running === 'number') f.owner.running = 1 + ((i + k++) % 4);
}

const nodes: ComputeNode[] = [];
const t0 = Date.now();
await Promise.all(
  Array.from({ length: COUNT }, async (_, j) => {
    const i = FIRST + j;
    await new Promise((r) => setTimeout(r, (j * SPREAD_MS) / COUNT));
    const node = makeNode(i);
    nodes.push(node);
    await node.start();
    fakeInFlight(node, i);
  }),
);
console.log(`ready ${COUNT} ${Date.now() - t0}`);

process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const connected = nodes.filter((n) => n.isRegistered).length;
  process.stdout.write(`simstats ${JSON.stringify({ ...stats, connected, userUs: cpu.user, systemUs: cpu.system, rss: mem.rss })}\n`);
});
process.on('SIGTERM', () => {
  for (const n of nodes) void n.stop();
  setTimeout(() => process.exit(0), 300);
});
setInterval(() => {
  if (process.ppid === 1) process.exit(0);
}, 2000).unref();
