// Per-call cost of every load-balancing strategy, in process (`pnpm bench:routing`).
//
// Three figures per strategy and provider count, in CPU nanoseconds per call, each the best
// of several timed rounds (the machines here are shared, and other tenants only ever add time):
//
// - select: the strategy alone, `select` over a fixed, seeded list of fake candidates (+
//   `observe` for learning strategies, as the gateway would show them every result).
// - route: the router's decision for one call of a function with that many providers
//   (health, capacity, requirements, the soft filter and the strategy), plus the slot the
//   dispatcher takes and gives back and the result shown to a learning strategy.
// - call: the whole in-process path of one call through the real Dispatcher: start,
//   route, the invoke frame to a fake node session, the node's result back, the strategy's
//   observe, outlier feedback and the reply to the caller (no network, no metrics store).
//
// A few calls stay in flight (CALL_WINDOW), so counting strategies see varied figures;
// about a tenth of the nodes report CPU above the availability threshold, so the soft filter
// has work to do. The last column of the route and call tables is the ratio of 1,000
// providers to 1: what routing a call costs as a function's fleet grows.
//
// Rounds are long (200 ms) because the call figure allocates, and shorter rounds catch
// a collection or miss one by chance; a whole run takes about four minutes.
//
// Env: BENCH_ROUTING_MS (time per round, 200), BENCH_ROUTING_ROUNDS (5),
// BENCH_ROUTING_STRATEGIES (comma-separated names; all built-ins by default),
// BENCH_ROUTING_SIZES (1,16,100,1000), BENCH_ROUTING_PARTS (select,route,call).
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AFFINITY_METADATA_KEY, FunctionSpec, type EasyRemoteError, type GatewayFrame } from '@easyremote/protocol';
import { AdmissionQueue } from '../../packages/gateway/src/calls/admission-queue.js';
import type { CallSink } from '../../packages/gateway/src/calls/call-sink.js';
import { Dispatcher } from '../../packages/gateway/src/calls/dispatcher.js';
import { PendingCall } from '../../packages/gateway/src/calls/pending-call.js';
import type { Clock, TimerHandle } from '../../packages/gateway/src/clock.js';
import { NodeHealthMonitor } from '../../packages/gateway/src/health/health-monitor.js';
import { OutlierDetector } from '../../packages/gateway/src/health/outlier-detector.js';
import { OutlierFeedback } from '../../packages/gateway/src/health/outlier-feedback.js';
import type { FunctionEntry } from '../../packages/gateway/src/registry/function-entry.js';
import { NodeSession } from '../../packages/gateway/src/registry/node-session.js';
import type { Provider } from '../../packages/gateway/src/registry/provider.js';
import { Registry } from '../../packages/gateway/src/registry/registry.js';
import { Router, type RoutableCall } from '../../packages/gateway/src/routing/router.js';
import { createStrategy, strategyNames } from '../../packages/gateway/src/strategies/registry.js';
import type { Candidate, Outcome, SelectContext } from '../../packages/gateway/src/strategies/strategy.js';
import { machine, mulberry32, table } from '../lib.js';

const ROUND_MS = Number(process.env['BENCH_ROUTING_MS'] ?? 200);
const ROUNDS = Number(process.env['BENCH_ROUTING_ROUNDS'] ?? 5);
const SIZES = (process.env['BENCH_ROUTING_SIZES'] ?? '1,16,100,1000').split(',').map(Number);
const PARTS = new Set((process.env['BENCH_ROUTING_PARTS'] ?? 'select,route,call').split(','));
/** Calls kept in flight while routing, so counting strategies see more than zeros. */
const CALL_WINDOW = 4;
/** Execution time a fake node reports, ms. */
const EXEC_MS = 5;
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

// Building a fleet of 1,000 nodes leaves garbage behind; collected before each measurement,
// it is not charged to the calls measured.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Runs `once(i)` for ROUND_MS after a warm-up, ROUNDS times; CPU ns per call of the best
 * round. CPU time (the process's, all threads: the collector's work is part of a call's
 * cost) rather than elapsed time, since the machines here are shared: time other tenants
 * take from us is not ours, though what they do to the caches still shows.
 */
function timeRounds(once: (i: number) => void): number {
  collectGarbage();
  // Warm-up: lets the JIT settle and the learning strategies reach a steady state.
  const warmUntil = performance.now() + ROUND_MS;
  let i = 0;
  while (performance.now() < warmUntil) for (let k = 0; k < 16; k++) once(i++);
  const perRound: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    const until = performance.now() + ROUND_MS;
    const start = process.cpuUsage();
    do {
      for (let k = 0; k < 64; k++) once(i++);
      calls += 64;
    } while (performance.now() < until);
    const used = process.cpuUsage(start);
    perRound.push(((used.user + used.system) * 1e3) / calls);
  }
  return Math.min(...perRound);
}

/** ns per select (+ observe) for one strategy over `count` candidates. */
function measureSelect(name: string, count: number): number {
  const random = mulberry32(SEED);
  const candidates = fakeCandidates(count, random);
  const ctx = fakeContext(random);
  const strategy = createStrategy(name);
  const observe = strategy.observe?.bind(strategy);
  // Service times per node are fixed, so a learning strategy sees a consistent world.
  const execMs = candidates.map((_, i) => 5 + ((i * 37) % 90));
  const index = new Map(candidates.map((c, i) => [c.nodeId, i]));
  let sink = 0;
  const ns = timeRounds((i) => {
    ctx.key(i);
    const picked = strategy.select(candidates, ctx);
    if (picked === undefined) return;
    sink += picked.nodeId.length;
    if (observe !== undefined) {
      const ms = execMs[index.get(picked.nodeId)!]!;
      const outcome: Outcome = { nodeId: picked.nodeId, ok: i % 50 !== 0, latencyMs: ms + 1, execMs: ms, candidate: picked, context: ctx };
      observe(outcome);
    }
  });
  if (sink < 0) console.log(sink); // keeps the picks observable to the optimiser
  return ns;
}

/** A clock that moves only when told: leases never lapse and no timer ever fires. */
class BenchClock implements Clock {
  private t = 0;
  now(): number {
    return this.t;
  }
  epochMs(): number {
    return 1_700_000_000_000 + this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  setTimeout(): TimerHandle {
    return undefined as unknown as TimerHandle;
  }
  clearTimeout(): void {}
}

const quietSink: CallSink = {
  result() {},
  resultPart: () => true,
  chunk: () => true,
  progress() {},
  end() {},
  error(err: EasyRemoteError) {
    throw new Error(`a bench call failed: ${err.message}`);
  },
  onDrain() {},
};

interface Fleet {
  readonly clock: BenchClock;
  readonly router: Router;
  readonly dispatcher: Dispatcher;
  readonly entry: FunctionEntry;
  /** The attempt id and session of the last invoke any fake node was sent. */
  readonly sent: { attemptId: number; session: NodeSession | undefined };
}

/**
 * One function served by `count` nodes with the same varied figures as fakeCandidates, wired
 * as gateway.ts wires the core (registry, outlier detector, health monitor, router,
 * dispatcher), on a clock that only the bench moves and a seeded random source.
 */
function fleet(strategy: string, count: number): Fleet {
  const random = mulberry32(SEED);
  const clock = new BenchClock();
  const registry = new Registry({}, { strategy, retryCount: 2 }, { clock, providerGapMs: 10_000 });
  const detector = new OutlierDetector({ now: () => clock.now(), providersOf: (fn) => registry.functions.get(fn)?.providers.size ?? 0 });
  // The bench clock moves 1 µs per call and the fake nodes send no frames: a lease of a
  // day keeps them alive however many calls the rounds make (ten seconds' lease ran out
  // after ten million calls, which a fast strategy makes in a few rounds).
  const health = new NodeHealthMonitor(registry, detector, { leaseMs: 86_400_000, clock });
  const router = new Router({ health, random, clock });
  const dispatcher = new Dispatcher({
    router,
    admission: new AdmissionQueue(),
    attempts: new OutlierFeedback(detector),
    recorder: { callFinished() {} },
    clock,
    providerGapMs: 10_000,
  });
  const sent: Fleet['sent'] = { attemptId: 0, session: undefined };
  for (const c of fakeCandidates(count, random)) {
    const session: NodeSession = new NodeSession(
      c.nodeId,
      `${c.nodeId}-1`,
      {
        send(frame: GatewayFrame) {
          if (frame.invoke !== undefined) {
            sent.attemptId = frame.invoke.attemptId;
            sent.session = session;
          }
        },
        writable: () => true,
        whenWritable: (listener) => listener(),
        close() {},
      },
      c.capabilities,
      clock,
      `bench:${c.nodeId}`,
    );
    session.telemetry = c.telemetry;
    session.rttMs = c.rttMs;
    registry.sessions.set(c.nodeId, session);
    const spec = FunctionSpec.fromPartial({ name: 'bench', kind: 'unary', maxConcurrent: c.maxConcurrent, queueSize: 2, costPerHour: c.costPerHour, performanceTier: c.performanceTier });
    registry.setFunctions(session, [spec]);
  }
  return { clock, router, dispatcher, entry: registry.functions.get('bench')!, sent };
}

const AFFINITY_KEYS = Array.from({ length: KEY_COUNT }, (_, i) => ({ [AFFINITY_METADATA_KEY]: `machine-${i}` }));

/**
 * ns per routed call: the router's decision, the slot the dispatcher takes for the attempt
 * and gives back when it ends, and the result shown to the strategy that picked (as the
 * dispatcher does), with CALL_WINDOW calls in flight.
 */
function measureRoute(name: string, count: number): number {
  const { clock, router, entry } = fleet(name, count);
  const calls: RoutableCall[] = AFFINITY_KEYS.map((metadata) => ({ entry, options: undefined, metadata, requestBytes: 100, tried: undefined }));
  const window: Array<{ provider: Provider; observe: (() => void) | undefined }> = [];
  return timeRounds((i) => {
    clock.advance(0.001);
    const d = router.route(calls[i % KEY_COUNT]!);
    if (d.type !== 'picked') throw new Error(`${name} did not pick: ${d.error.message}`);
    const { provider, strategy, context } = d;
    provider.inFlight++;
    provider.session.inFlight++;
    const snapshot = strategy.observe ? provider.snapshot() : undefined;
    window.push({
      provider,
      observe:
        snapshot === undefined ? undefined : () => strategy.observe!({ nodeId: provider.nodeId, ok: true, latencyMs: EXEC_MS + 1, execMs: EXEC_MS, candidate: snapshot, context }),
    });
    if (window.length > CALL_WINDOW) {
      const done = window.shift()!;
      done.provider.inFlight--;
      done.provider.session.inFlight--;
      done.provider.recordOutcome(true, EXEC_MS + 1, EXEC_MS);
      done.observe?.();
    }
  });
}

/** ns per call through the real Dispatcher: start, route, invoke, result, observe, reply. */
function measureCall(name: string, count: number): number {
  const { clock, dispatcher, entry, sent } = fleet(name, count);
  const args = Buffer.from('args');
  const payload = Buffer.from('result');
  const window: Array<{ session: NodeSession; attemptId: number }> = [];
  let id = 0;
  return timeRounds((i) => {
    clock.advance(0.001);
    const call = new PendingCall(++id, entry, args, undefined, AFFINITY_KEYS[i % KEY_COUNT]!, 0, false, false, quietSink, clock.now(), 'bench');
    sent.session = undefined;
    dispatcher.start(call);
    if (sent.session === undefined) throw new Error(`${name} did not dispatch call ${id}`);
    window.push({ session: sent.session, attemptId: sent.attemptId });
    if (window.length > CALL_WINDOW) {
      const done = window.shift()!;
      dispatcher.onResult(done.session, { attemptId: done.attemptId, payload, execMs: EXEC_MS });
    }
  });
}

const only = process.env['BENCH_ROUTING_STRATEGIES']?.split(',').filter(Boolean);
const names = only ?? strategyNames().filter((n) => n !== 'pick_first');
const format = (ns: number) => (ns < 100 ? ns.toFixed(1) : Math.round(ns).toLocaleString('en-US'));
const parts: Array<{ part: string; measure: (name: string, n: number) => number; title: string; unit: string; ratio: boolean }> = [
  { part: 'select', measure: measureSelect, title: 'CPU ns per select (+ observe for learning strategies)', unit: 'candidates', ratio: false },
  { part: 'route', measure: measureRoute, title: 'CPU ns per routed call (route + the slot taken and freed + observe)', unit: 'providers', ratio: true },
  { part: 'call', measure: measureCall, title: 'CPU ns per call through the dispatcher (start, route, invoke, result, observe, reply)', unit: 'providers', ratio: true },
];
const ratioOf = (figures: number[]) => {
  const one = SIZES.indexOf(1);
  const thousand = SIZES.indexOf(1000);
  return one >= 0 && thousand >= 0 ? (figures[thousand]! / figures[one]!).toFixed(2) : '–';
};
const out: string[] = [];
for (const { part, measure, title, unit, ratio } of parts) {
  if (!PARTS.has(part)) continue;
  const rows: Array<Array<string | number>> = [];
  for (const name of ['pick_first', ...names]) {
    const figures = SIZES.map((n) => measure(name, n));
    const cells = figures.map(format);
    rows.push([name, ...cells, ...(ratio ? [ratioOf(figures)] : [])]);
    console.error(`${part} ${name}: ${cells.join(' / ')}${ratio ? ` (1000:1 ${ratioOf(figures)})` : ''}`);
  }
  const header = ['strategy', ...SIZES.map((n) => `${n.toLocaleString('en-US')} ${unit}`), ...(ratio ? ['1,000 : 1'] : [])];
  out.push(`${title}, best of ${ROUNDS} × ${ROUND_MS} ms\n\n${table(header, rows)}`);
}
console.log(`\n${machine()}\n\n${out.join('\n\n')}`);
