// The seed's backends, as compute nodes in direct mode, in one process (their work is a
// timer, so they do not compete for the cores): backend1..backend<COUNT>, each listening on
// its own loopback port. Every scenario has its own function, so each starts with fresh
// strategy state and its own slot on each backend: `task<N>_<strategy>_<mode>` is served by
// backend1..backend<N> with one slot and a queue of QUEUE, and takes WORK_MS. backend1 also
// serves `echo` (the payload round trips). Prints `ready <json: id → direct address>`.
import { ComputeNode } from '@easyremote/node';
import { MODES, QUEUE, STRATEGIES, WORK_MS, taskName } from './scenarios.js';

const sizes = (process.env.SIZES ?? '10,15').split(',').map(Number);
const count = Math.max(...sizes);
const nodes: ComputeNode[] = [];
await Promise.all(
  Array.from({ length: count }, async (_, i) => {
    const id = `backend${i + 1}`;
    // No telemetry: one process would report the same machine load for every backend.
    const node = new ComputeNode({ gateway: process.env.GATEWAY!, nodeId: id, telemetry: false, logger: { level: 'warn' }, direct: { listen: '127.0.0.1:0' } });
    const work = () => new Promise<string>((resolve) => setTimeout(() => resolve(id), WORK_MS));
    for (const size of sizes) {
      if (i >= size) continue;
      for (const strategy of STRATEGIES) {
        for (const mode of MODES) {
          node.register(taskName(size, strategy, mode), work, { maxConcurrent: 1, queueSize: QUEUE, ...(strategy === 'default' ? {} : { loadBalancing: strategy }) });
        }
      }
    }
    if (i === 0) node.register('echo', (b: Buffer) => b);
    nodes.push(node);
    await node.start();
  }),
);
console.log(`ready ${JSON.stringify(Object.fromEntries(nodes.map((n) => [n.nodeId, n.directAddress])))}`);
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 1000).unref();
  void Promise.all(nodes.map((n) => n.stop())).then(() => process.exit(0));
});
