// Compute nodes serving `echo`, in one process. By default one node, `echo-node`, with
// system telemetry. COUNT=n starts n nodes (`provider-<FIRST + i>`, each with its own
// connection, as separate machines would have) with fixed telemetry, so a thousand of
// them do not each sample the machine. TLS_CA (a PEM file path) connects over TLS,
// verifying the gateway against that CA. HEAP_HEADROOM sets heapHeadroomBytes. Prints
// `ready` once all are registered.
import { ComputeNode, StaticTelemetryProvider } from '@easyremote/node';
import { serveControl } from '../control.js';

const GiB = 2 ** 30;
const COUNT = process.env.COUNT === undefined ? undefined : Number(process.env.COUNT);
const FIRST = Number(process.env.FIRST ?? 0);
/** Starts are spread over this long, so heartbeats spread over the interval. */
const SPREAD_MS = Number(process.env.SPREAD_MS ?? 1000);

function staticTelemetry(): StaticTelemetryProvider {
  return new StaticTelemetryProvider(
    { cpuCores: 16, memoryTotalBytes: 64 * GiB, gpus: [] },
    { cpuPercent: 20, memoryUsedBytes: 16 * GiB, memoryTotalBytes: 64 * GiB, gpus: [] },
  );
}

const echo = (value: unknown) => value;
const nodes: ComputeNode[] = [];
const heap = process.env.HEAP_HEADROOM ? { heapHeadroomBytes: Number(process.env.HEAP_HEADROOM) } : {};
if (COUNT === undefined) {
  const tls = process.env.TLS_CA ? { ca: process.env.TLS_CA } : undefined;
  const node = new ComputeNode({ gateway: process.env.GATEWAY!, nodeId: 'echo-node', ...heap, ...(tls ? { tls } : {}) });
  node.register('echo', echo);
  nodes.push(node);
  await node.start();
} else {
  await Promise.all(
    Array.from({ length: COUNT }, async (_, j) => {
      await new Promise((r) => setTimeout(r, (j * SPREAD_MS) / COUNT));
      const node = new ComputeNode({ gateway: process.env.GATEWAY!, nodeId: `provider-${FIRST + j}`, telemetry: staticTelemetry(), ...heap });
      node.register('echo', echo);
      nodes.push(node);
      await node.start();
    }),
  );
}
serveControl();
console.log('ready');
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 1000).unref();
  void Promise.all(nodes.map((n) => n.stop())).then(() => process.exit(0));
});
