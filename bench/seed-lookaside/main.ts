// The scale test of the look-aside design this project grew from (seeds/001): 10 and 15
// backends, 100 concurrent clients, each task 500 ms of simulated work on a backend with
// one slot (a queue allowed), under pick_first, round_robin, least_load and the gateway's
// default strategy, in look-aside mode (GetBackend, then a direct call) and proxied through
// the gateway. Then 1 MiB and 16 MiB round trips direct, look-aside and proxied, in the
// same run. The gateway and the backends are processes of their own; the 100 clients live
// in this one. Prints the tables and writes BENCHMARKS.md's section.
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connect, type DynamicClient } from '@easyremote/client';
import { boundRun, machine, percentile, spawnTs, stopAll, table, writeSection } from '../lib.js';
import { MODES, QUEUE, STRATEGIES, WORK_MS, taskName } from './scenarios.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 100);
const SIZES = (process.env.BENCH_SIZES ?? '10,15').split(',').map(Number);
const PAYLOADS = [
  { label: '1 MiB', bytes: 2 ** 20, reps: Number(process.env.BENCH_REPS_1MIB ?? 20) },
  { label: '16 MiB', bytes: 16 * 2 ** 20, reps: Number(process.env.BENCH_REPS_16MIB ?? 10) },
];
/** A hard bound on the whole run (the default finishes in about 5 minutes on 2 shared cores). */
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 600);

/** The original report's figures (seeds/001): req/s as it reports them, then mean, min and max response time (s). */
const SEED: Record<number, Record<string, { rps: number; mean: number; min: number; max: number; spread: string }>> = {
  10: {
    pick_first: { rps: 7.49, mean: 6.701, min: 0.526, max: 12.78, spread: 'all 100 on one backend' },
    round_robin: { rps: 36.16, mean: 1.235, min: 0.546, max: 1.951, spread: '10 each' },
    least_load: { rps: 35.28, mean: 1.234, min: 0.521, max: 2.198, spread: '6–13' },
  },
  15: {
    pick_first: { rps: 6.14, mean: 7.013, min: 0.526, max: 15.544, spread: 'all 100 on one backend' },
    round_robin: { rps: 17.5, mean: 2.801, min: 0.563, max: 4.873, spread: 'about 7 each' },
    least_load: { rps: 38.61, mean: 1.254, min: 0.562, max: 1.999, spread: '1–11' },
  },
};

boundRun('seed-lookaside', DEADLINE_S);

const log = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}`);
const t0 = performance.now();
const loadAtStart = loadavg()[0]!;

const gateway = await spawnTs('bench/seed-lookaside/gateway.ts');
const [, grpcPort, httpPort] = gateway.line.trim().split(' ');
const address = `127.0.0.1:${grpcPort}`;
const backends = await spawnTs('bench/seed-lookaside/backends.ts', { GATEWAY: address, SIZES: SIZES.join(',') });
const direct = JSON.parse(backends.line.trim().slice('ready '.length)) as Record<string, string>;
log(`gateway ${address}, ${Object.keys(direct).length} backends`);

/** Picks still holding a slot at the gateway (outcomes on their way). */
async function openPicks(): Promise<number> {
  const docs = (await (await fetch(`http://127.0.0.1:${httpPort}/api/backends`)).json()) as Array<{ openPicks: number }>;
  return docs.reduce((n, d) => n + d.openPicks, 0);
}

interface Scenario {
  backends: number;
  strategy: (typeof STRATEGIES)[number];
  mode: (typeof MODES)[number];
  wallS: number;
  times: number[];
  perBackend: Map<string, number>;
  errors: number;
}

async function scenario(backendCount: number, strategy: Scenario['strategy'], mode: Scenario['mode']): Promise<Scenario> {
  const clients: DynamicClient[] = Array.from({ length: CLIENTS }, () => connect(address, mode === 'la' ? { mode: 'look-aside' } : {}));
  await Promise.all(clients.map((c) => c.waitForReady(10_000)));
  const fn = taskName(backendCount, strategy, mode);
  const times: number[] = [];
  const perBackend = new Map<string, number>();
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      const t = performance.now();
      try {
        const id = await c.call<string>(fn, [], { timeout: 120_000 });
        times.push((performance.now() - t) / 1000);
        perBackend.set(id, (perBackend.get(id) ?? 0) + 1);
      } catch (err) {
        errors++;
        console.error(`${fn}: ${(err as Error).message}`);
      }
    }),
  );
  const wallS = (performance.now() - start) / 1000;
  // Outcomes travel after the answers: let them land before the clients go.
  for (let i = 0; i < 100 && (await openPicks()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  for (const c of clients) c.close();
  return { backends: backendCount, strategy, mode, wallS, times, perBackend, errors };
}

const results: Scenario[] = [];
for (const size of SIZES) {
  for (const strategy of STRATEGIES) {
    // Alternating which mode goes first, so neither always meets a warmer machine.
    const modes = results.length % 4 === 0 ? MODES : ([...MODES].reverse() as typeof MODES[number][]);
    for (const mode of modes) {
      const r = await scenario(size, strategy, mode);
      results.push(r);
      log(`${size} backends, ${strategy}, ${mode === 'la' ? 'look-aside' : 'proxy'}: ${r.wallS.toFixed(2)} s, mean ${mean(r.times).toFixed(3)} s${r.errors ? `, ${r.errors} errors` : ''}`);
    }
  }
}

// ---- payloads ---------------------------------------------------------------------------

const paths = {
  direct: connect(direct.backend1!),
  'look-aside': connect(address, { mode: 'look-aside' }),
  proxied: connect(address),
} as const;
type Path = keyof typeof paths;
const payloadTimes = new Map<string, Record<Path, number[]>>();
for (const c of Object.values(paths)) await c.echo(Buffer.alloc(16, 1));
for (const p of PAYLOADS) {
  const arg = Buffer.alloc(p.bytes, 7);
  const times: Record<Path, number[]> = { direct: [], 'look-aside': [], proxied: [] };
  const order = Object.keys(paths) as Path[];
  for (let rep = 0; rep <= p.reps; rep++) {
    for (let k = 0; k < order.length; k++) {
      const path = order[(rep + k) % order.length]!;
      const t = performance.now();
      const back = (await paths[path].echo(arg)) as Buffer;
      const ms = performance.now() - t;
      if (back.length !== p.bytes) throw new Error(`${path}: echo of ${p.bytes} bytes came back as ${back.length}`);
      // The first round warms every path up.
      if (rep > 0) times[path].push(ms);
    }
  }
  payloadTimes.set(p.label, times);
  log(`${p.label}: direct ${median(times.direct).toFixed(1)} ms, look-aside ${median(times['look-aside']).toFixed(1)} ms, proxied ${median(times.proxied).toFixed(1)} ms`);
}
for (const c of Object.values(paths)) c.close();
const loadAtEnd = loadavg()[0]!;
const totalS = (performance.now() - t0) / 1000;
await stopAll();

// ---- tables -----------------------------------------------------------------------------

function mean(xs: number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
function median(xs: number[]): number {
  return percentile(xs, 50);
}
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–');

function spreadOf(r: Scenario): string {
  const counts = [...r.perBackend.values()].sort((a, b) => b - a);
  if (counts.length === 1) return `all ${counts[0]} on ${[...r.perBackend.keys()][0]}`;
  const unused = r.backends - counts.length;
  return `${counts.length} backends, ${Math.min(...counts)}–${Math.max(...counts)} each${unused > 0 ? ` (${unused} unused)` : ''}`;
}

const rows: Array<Array<string | number>> = [];
for (const size of SIZES) {
  const limit = size / (WORK_MS / 1000);
  for (const strategy of STRATEGIES) {
    const seed = SEED[size]?.[strategy];
    for (const mode of MODES) {
      const r = results.find((x) => x.backends === size && x.strategy === strategy && x.mode === mode)!;
      const throughput = r.times.length / r.wallS;
      const m = mean(r.times);
      rows.push([
        size,
        strategy === 'default' ? 'default (smart_adaptive)' : strategy,
        mode === 'la' ? '**look-aside**' : 'proxy',
        f2(throughput),
        `${f2(throughput / limit)} of ${limit}`,
        f3(m),
        f3(Math.min(...r.times)),
        f3(Math.max(...r.times)),
        f2(CLIENTS / m),
        spreadOf(r) + (r.errors ? `; ${r.errors} failed` : ''),
        seed ? `${seed.rps} (mean ${seed.mean}, ${seed.min}–${seed.max}; ${seed.spread})` : '–',
      ]);
    }
  }
}
const scaleTable = table(
  ['backends', 'strategy', 'mode', 'req/s (completed ÷ wall time)', "share of Little's-law limit (req/s)", 'mean s', 'min s', 'max s', 'clients ÷ mean s', 'requests per backend', 'original report: req/s (mean, min–max s; spread)'],
  rows,
);

// Look-aside against proxy, scenario by scenario.
const ratios: number[] = [];
const extraS: number[] = [];
for (const size of SIZES) {
  for (const strategy of STRATEGIES) {
    const [la, px] = MODES.map((mode) => results.find((x) => x.backends === size && x.strategy === strategy && x.mode === mode)!);
    ratios.push(la!.times.length / la!.wallS / (px!.times.length / px!.wallS));
    extraS.push(mean(la!.times) - mean(px!.times));
  }
}
const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))} to ${f(Math.max(...xs))}`;

const payloadRows: Array<Array<string | number>> = [];
let sixteenRatio = NaN;
for (const p of PAYLOADS) {
  const t = payloadTimes.get(p.label)!;
  const d = median(t.direct);
  const cell = (xs: number[]) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
  payloadRows.push([p.label, p.reps, cell(t.direct), cell(t['look-aside']), cell(t.proxied), f2(d / median(t['look-aside'])), f2(d / median(t.proxied))]);
  if (p.label === '16 MiB') sixteenRatio = d / median(t['look-aside']);
}
const payloadTable = table(['payload', 'reps', 'direct ms', 'look-aside ms', 'proxied ms', 'look-aside speed ÷ direct', 'proxied speed ÷ direct'], payloadRows);

const body = `## The seed's look-aside scale test (\`pnpm bench:seed-lookaside\`)

The scale test of the gRPC look-aside design this project grew from (\`seeds/001\`): ${SIZES.join(' and ')} backends, ${CLIENTS} concurrent clients with one call each, every task ${WORK_MS} ms of simulated work (a timer) on a backend with **one slot** and a queue of ${QUEUE}. The backends are compute nodes in direct mode (\`direct: { listen }\`, one process, no telemetry), the gateway as shipped (call metrics in an SQLite file), each its own process; the ${CLIENTS} clients are ${CLIENTS} \`connect()\`ed clients in the bench process, each with its own connection, started together. **Look-aside**: \`connect(gateway, { mode: 'look-aside' })\`: GetBackends, the call straight to the backend's own port, the outcome reported after. **Proxy**: \`connect(gateway)\`, the gateway relays the call. Each scenario has its own function, so its strategy starts with no state. Strategies are the functions' declared \`loadBalancing\`; *default* is the gateway's default strategy.

With one slot per backend, throughput cannot exceed backends ÷ service time (Little's law: ${SIZES.map((s) => `${s / (WORK_MS / 1000)} req/s for ${s}`).join(', ')}); the share column is the measured throughput (calls completed ÷ the time from the first call to the last answer) against that limit. Clients ÷ mean response time stands beside the original report's req/s, the figure those are said to be; the report's own figures do not quite bear that out (its req/s × mean response time comes to 43–50 in every row, not 100), and its means (1.2 s for 100 tasks of 0.5 s on 10 backends) are only possible if its backends ran several tasks at once, so only the requests per backend compare directly. Machine: ${machine()}, shared: 1-minute load average ${loadAtStart.toFixed(1)} at the start and ${loadAtEnd.toFixed(1)} at the end, on ${cpus().length} cores (the work is timers, so the load shows in the milliseconds, not the seconds). ${totalS.toFixed(0)} s in all.

${scaleTable}

Look-aside against proxy in the same run: throughput ${range(ratios, f2)} × proxy's, mean response time ${range(extraS, (x) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`)} s. Each client here makes one call, so every look-aside call pays, on its own path, what a proxied call does not: a GetBackends round trip to the gateway and a new connection to its backend (the proxied call uses the connection the client already had to the gateway), ${CLIENTS} of each at once; a client that makes more calls pays the connection once and the round trip once per pick TTL.

### Large payloads: direct, look-aside and proxied

The echo of a Buffer of that size by \`backend1\`, one call at a time, in the same run: **direct** is a client \`connect()\`ed to the node's direct address itself (no gateway at all); **look-aside** asks the gateway for a pick (kept for its TTL, so most reps reuse it) and calls the node directly; **proxied** goes through the gateway. Paths in rotating order; a first round of each discarded. Median (min–max) ms per round trip; on a shared machine the spread is wide, and with medians this close the order of direct and look-aside can come out either way.

${payloadTable}

| target | this run | met |
| --- | --- | --- |
| 16 MiB round trip: look-aside speed ≥ 0.9 × direct | ${f2(sixteenRatio)} × | ${sixteenRatio >= 0.9 ? 'yes' : '**no**'} |
`;
console.log(`\n${body}`);
writeSection('seed-lookaside', body);
process.exit(0);
