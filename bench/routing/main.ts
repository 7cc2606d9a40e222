// Per-call cost of every load-balancing strategy, in process (`pnpm bench:routing`).
//
// The router runs one `select` per call (and the strategy's `observe` once the call ends),
// so this is the part of the hot path each strategy owns. For each strategy and each
// candidate count, one instance routes a fixed, seeded set of fake candidates for a fixed
// time after a warm-up; a learning strategy is shown every result, as the gateway would.
// Figures are nanoseconds per select (+ observe), the best of several timed rounds (the
// machines here are shared, and other tenants only ever add time), with pick_first, which
// does no work, as the baseline of the same run.
//
// Env: BENCH_ROUTING_MS (time per round, 50), BENCH_ROUTING_ROUNDS (7),
// BENCH_ROUTING_STRATEGIES (comma-separated names; all built-ins by default),
// BENCH_ROUTING_SIZES (1,16,100,1000).
import { performance } from 'node:perf_hooks';
import { createStrategy, strategyNames } from '../../packages/gateway/src/strategies/registry.js';
import type { Candidate, Outcome, SelectContext } from '../../packages/gateway/src/strategies/strategy.js';
import { machine, mulberry32, table } from '../lib.js';

const ROUND_MS = Number(process.env['BENCH_ROUTING_MS'] ?? 50);
const ROUNDS = Number(process.env['BENCH_ROUTING_ROUNDS'] ?? 7);
const SIZES = (process.env['BENCH_ROUTING_SIZES'] ?? '1,16,100,1000').split(',').map(Number);
const SEED = 2024;
/** Distinct affinity keys cycled through, so consistent_hash walks different parts of the ring. */
const KEY_COUNT = 64;
const GB = 1e9;

/** Candidates with varied, plausible figures: a mix of GPU and CPU nodes, some without telemetry. */
function fakeCandidates(count: number, random: () => number): Candidate[] {
  return Array.from({ length: count }, (_, i) => {
    const hasGpu = i % 3 === 0;
    const memoryTotalBytes = (16 + Math.floor(random() * 4) * 16) * GB;
    return {
      nodeId: `node-${i}`,
      capabilities: {
        cpuCores: 4 + Math.floor(random() * 4) * 4,
        memoryTotalBytes,
        gpus: hasGpu ? [{ index: 0, model: 'RTX 4090', vramTotalBytes: 24 * GB }] : [],
        labels: { location: i % 2 === 0 ? 'eu' : 'us' },
        costPerHour: 0,
      },
      telemetry:
        i % 7 === 6
          ? undefined
          : {
              cpuPercent: random() * 100,
              memoryUsedBytes: random() * memoryTotalBytes,
              memoryTotalBytes,
              gpus: hasGpu ? [{ index: 0, utilizationPercent: random() * 100, vramUsedBytes: random() * 24 * GB, vramTotalBytes: 24 * GB }] : [],
              receivedAt: 0,
            },
      rttMs: 0.5 + random() * 20,
      inFlight: Math.floor(random() * 4),
      nodeInFlight: Math.floor(random() * 8),
      maxConcurrent: i % 2 === 0 ? 4 : 0,
      queued: Math.floor(random() * 2),
      costPerHour: random() * 3,
      performanceTier: 1 + Math.floor(random() * 4),
      weight: 1,
      history: { completed: 100, failures: 1, ewmaLatencyMs: 5 + random() * 100, ewmaExecMs: 4 + random() * 90 },
    };
  });
}

function fakeContext(random: () => number): SelectContext & { key(i: number): void } {
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `machine-${i}`);
  let clock = 0;
  const ctx = {
    functionName: 'bench',
    random,
    now: () => clock,
    epochMs: () => 1_700_000_000_000 + clock,
    affinityKey: keys[0],
    complexity: 1,
    requestBytes: 1_000,
    preferences: {},
    key(i: number) {
      ctx.affinityKey = keys[i % KEY_COUNT];
      clock += 1;
    },
  };
  return ctx;
}

/** ns per select (+ observe) for one strategy over `count` candidates: best of ROUNDS rounds. */
function measure(name: string, count: number): number {
  const random = mulberry32(SEED);
  const candidates = fakeCandidates(count, random);
  const ctx = fakeContext(random);
  const strategy = createStrategy(name);
  const observe = strategy.observe?.bind(strategy);
  // Service times per node are fixed, so a learning strategy sees a consistent world.
  const execMs = candidates.map((_, i) => 5 + ((i * 37) % 90));
  const index = new Map(candidates.map((c, i) => [c.nodeId, i]));
  let sink = 0;
  const once = (i: number) => {
    ctx.key(i);
    const picked = strategy.select(candidates, ctx);
    if (picked === undefined) return;
    sink += picked.nodeId.length;
    if (observe !== undefined) {
      const ms = execMs[index.get(picked.nodeId)!]!;
      const outcome: Outcome = { nodeId: picked.nodeId, ok: i % 50 !== 0, latencyMs: ms + 1, execMs: ms, candidate: picked, context: ctx };
      observe(outcome);
    }
  };
  // Warm-up: lets the JIT settle and the learning strategies reach a steady state.
  const warmUntil = performance.now() + ROUND_MS;
  let i = 0;
  while (performance.now() < warmUntil) for (let k = 0; k < 16; k++) once(i++);
  const perRound: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    const start = performance.now();
    const until = start + ROUND_MS;
    let now = start;
    while (now < until) {
      for (let k = 0; k < 64; k++) once(i++);
      calls += 64;
      now = performance.now();
    }
    perRound.push(((now - start) * 1e6) / calls);
  }
  if (sink < 0) console.log(sink); // keeps the picks observable to the optimiser
  return Math.min(...perRound);
}

const only = process.env['BENCH_ROUTING_STRATEGIES']?.split(',').filter(Boolean);
const names = only ?? strategyNames().filter((n) => n !== 'pick_first');
const rows: Array<Array<string | number>> = [];
const format = (ns: number) => (ns < 100 ? ns.toFixed(1) : Math.round(ns).toLocaleString('en-US'));
for (const name of ['pick_first', ...names]) {
  const cells = SIZES.map((n) => format(measure(name, n)));
  rows.push([name, ...cells]);
  console.error(`${name}: ${cells.join(' / ')}`);
}
console.log(`\nns per select (+ observe for learning strategies), best of ${ROUNDS} × ${ROUND_MS} ms; ${machine()}\n`);
console.log(table(['strategy', ...SIZES.map((n) => `${n.toLocaleString('en-US')} candidates`)], rows));
