// One simulated server of the strategies benchmark: a compute node with ONE worker and a
// local FIFO queue (maxConcurrent 1, a queue far larger than any backlog), serving `work`.
// A call holds the worker for BASE_MS × FACTOR × speed × U(0.9, 1.1) ms and returns the
// node id. Commands on stdin (one per line):
//   start <gateway address>   connect and register; prints `ready` once accepted
//   speed <multiplier>        later calls take `multiplier` times as long (1 = normal)
// The process exits when stdin closes, so it never outlives the benchmark.
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { ComputeNode, currentCall } from '@easyremote/node';
import { mulberry32 } from '../lib.js';

const nodeId = process.env.NODE_ID!;
const factor = Number(process.env.FACTOR ?? 1);
const baseMs = Number(process.env.BASE_MS ?? 10);
const costPerHour = Number(process.env.COST ?? 1);
const location = process.env.LOCATION ?? 'lab';
/** Queue on the node: never reached, so the gateway never sees the node as full. */
const QUEUE_SIZE = 100_000;

let speed = 1;
const rng = mulberry32(Number(process.env.SEED ?? 1));

function makeNode(gateway: string): ComputeNode {
  const n = new ComputeNode({ gateway, nodeId, telemetry: false, labels: { location, speed: `${factor}x` }, costPerHour });
  n.register(
    'work',
    async () => {
      const ms = baseMs * factor * speed * (0.9 + 0.2 * rng());
      const { signal } = currentCall();
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        // A cancelled call (deadline passed) frees the worker at once, as a server that checks
        // its cancellation would; otherwise the worker sleeps out its service time.
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      return { node: nodeId, ms: performance.now() - t0 };
    },
    {
      maxConcurrent: 1,
      queueSize: QUEUE_SIZE,
      performanceTier: 1 / factor,
      costPerHour,
    },
  );
  return n;
}

let running: ComputeNode | undefined;
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'start' && arg && running === undefined) {
    running = makeNode(arg);
    running.start().then(
      () => console.log('ready'),
      (err: Error) => {
        console.error(`node ${nodeId}: ${err.message}`);
        process.exit(1);
      },
    );
  } else if (cmd === 'speed' && arg) {
    speed = Number(arg);
    console.log(`speed ${speed}`);
  }
});
lines.on('close', () => {
  void running?.stop();
  process.exit(0);
});
console.log('loaded');

