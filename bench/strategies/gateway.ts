// The gateway of the strategies benchmark, in its own process, with one extra strategy:
// the join-shortest-queue oracle `oracle_jsq` (fewest calls in flight, counted exactly at
// the gateway; ties at random). Prints `ready <port>`, then one `event ...` line per node
// ejection or readmission. stdin: `describe` prints `state <json>` (what the strategy of
// `work` reports about itself); the process exits when stdin closes.
import { createInterface } from 'node:readline';
import { Gateway, registerStrategy, type Candidate, type SelectContext } from '@easyremote/gateway';
import { mulberry32 } from '../lib.js';

registerStrategy('oracle_jsq', () => ({
  name: 'oracle_jsq',
  select(candidates: readonly Candidate[], context: SelectContext) {
    if (candidates.length === 0) return undefined;
    let fewest = Infinity;
    for (const c of candidates) fewest = Math.min(fewest, c.inFlight);
    const tied = candidates.filter((c) => c.inFlight === fewest);
    return tied[Math.min(tied.length - 1, Math.floor(context.random() * tied.length))];
  },
}));

const strategy = process.env.STRATEGY ?? 'round_robin';
const threshold = process.env.AVAILABLE_THRESHOLD ? Number(process.env.AVAILABLE_THRESHOLD) : undefined;
const gw = new Gateway({
  port: 0,
  host: '127.0.0.1',
  logger: { level: 'silent' },
  slowStartMs: 0,
  metrics: { path: ':memory:' },
  defaultStrategy: strategy,
  ...(threshold !== undefined ? { availableThreshold: threshold } : {}),
  random: mulberry32(Number(process.env.SEED ?? 7)),
});
gw.on('node-event', (e) => {
  if (e.kind === 'ejected' || e.kind === 'readmitted') console.log(`event ${e.kind} ${e.nodeId} ${e.detail}`);
});
await gw.start();
console.log(`ready ${gw.port}`);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'describe') return;
  const entry = gw.registry.functions.get('work');
  const s = entry?.strategy(entry.config.strategy);
  console.log(`state ${JSON.stringify({ strategy: s?.name ?? null, describe: s?.describe?.() ?? null })}`);
});
lines.on('close', () => {
  void gw.stop().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1500).unref();
});

