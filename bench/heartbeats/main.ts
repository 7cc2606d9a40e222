// The gateway's CPU cost of heartbeats: the gateway runs alone in a child process and
// reports its own process.cpuUsage(); we take deltas over a window while it is idle and
// while 1,000 simulated nodes (real ComputeNodes, in two sim processes) send heartbeats at
// the default interval. Repeated BENCH_RUNS times, each with a fresh gateway.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HEARTBEAT_MS, GatewayFrame, NodeFrame } from '@easyremote/protocol';
import { machine, spawnTs, stopAll, table, writeSection } from '../lib.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const SIM_PROCESSES = Number(process.env.BENCH_SIM_PROCESSES ?? 2);
const WINDOW_S = Number(process.env.BENCH_SECONDS ?? 10);
const SETTLE_S = Number(process.env.BENCH_SETTLE_SECONDS ?? 3);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
// Nodes always get a connection of their own (ComputeNode sets grpc.use_local_subchannel_pool),
// so the former 'shared' mode measures the same thing; it stays selectable for comparison.
const MODES = (process.env.BENCH_MODES ?? 'separate').split(',') as Array<'shared' | 'separate'>;

// Everything stops by itself, whatever happens.
const hardStop = setTimeout(
  () => {
    console.error('heartbeats benchmark: hard time limit reached');
    stopAll();
    process.exit(1);
  },
  (RUNS * (WINDOW_S * (MODES.length + 2) + MODES.length * (SETTLE_S + 90)) + 60) * 1000,
);
hardStop.unref();

interface GwStats {
  t: number;
  userUs: number;
  systemUs: number;
  rss: number;
  heapUsed: number;
  nodes: number;
  heartbeats: number;
  pongs: number;
  otherFrames: number;
  connections: number;
  joined: number;
  left: number;
  lost: number;
  refused: number;
  lastLost: string;
  lastRefused: string;
}
interface SimStats {
  registered: number;
  disconnected: number;
  refused: number;
  errors: number;
  lastError: string;
  connected: number;
  userUs: number;
  systemUs: number;
  rss: number;
}

const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-heartbeats-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals the child (SIGUSR2) and resolves with the JSON of the next line starting with `prefix`. */
function ask<T>(child: ChildProcess, prefix: string, signal: NodeJS.Signals = 'SIGUSR2'): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no ${prefix} line from pid ${child.pid}`)), 10_000);
    const onData = (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith(`${prefix} `)) return done(undefined, JSON.parse(line.slice(prefix.length + 1)) as T);
      }
    };
    const done = (err?: Error, value?: T) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      if (err) reject(err);
      else resolve(value!);
    };
    child.stdout!.on('data', onData);
    child.kill(signal);
  });
}

async function waitForNodes(gw: ChildProcess, want: number, timeoutS: number): Promise<GwStats> {
  const until = Date.now() + timeoutS * 1000;
  for (;;) {
    const s = await ask<GwStats>(gw, 'stats');
    if (s.nodes === want) return s;
    if (Date.now() > until) throw new Error(`gateway has ${s.nodes} nodes, expected ${want}, after ${timeoutS} s`);
    await sleep(250);
  }
}

interface Window {
  seconds: number;
  cpuMsPerS: number;
  heartbeatsPerS: number;
  pongsPerS: number;
  otherPerS: number;
  end: GwStats;
  /** Memory after a full GC, taken after the window. */
  gc: GwStats;
  simCpuMsPerS?: number;
  sims?: SimStats[];
}

async function measure(gw: ChildProcess, sims: ChildProcess[]): Promise<Window> {
  const simA = await Promise.all(sims.map((s) => ask<SimStats>(s, 'simstats')));
  const a = await ask<GwStats>(gw, 'stats');
  await sleep(WINDOW_S * 1000);
  const b = await ask<GwStats>(gw, 'stats');
  const simB = await Promise.all(sims.map((s) => ask<SimStats>(s, 'simstats')));
  const gc = await ask<GwStats>(gw, 'gcstats', 'SIGHUP');
  const seconds = (b.t - a.t) / 1000;
  const w: Window = {
    seconds,
    cpuMsPerS: (b.userUs - a.userUs + b.systemUs - a.systemUs) / 1000 / seconds,
    // Counted in the gateway; if its frame handler could not be wrapped (-1), estimated.
    heartbeatsPerS: b.heartbeats >= 0 ? (b.heartbeats - a.heartbeats) / seconds : (b.nodes * 1000) / DEFAULT_HEARTBEAT_MS,
    pongsPerS: (b.pongs - a.pongs) / seconds,
    otherPerS: (b.otherFrames - a.otherFrames) / seconds,
    end: b,
    gc,
  };
  if (sims.length > 0) {
    const simUs = simB.reduce((n, s, i) => n + s.userUs + s.systemUs - simA[i]!.userUs - simA[i]!.systemUs, 0);
    w.simCpuMsPerS = simUs / 1000 / seconds;
    w.sims = simB;
  }
  return w;
}

async function startSims(address: string, separate: boolean): Promise<{ sims: ChildProcess[]; registerS: number }> {
  const per = Math.ceil(NODES / SIM_PROCESSES);
  const t0 = Date.now();
  const started = await Promise.all(
    Array.from({ length: SIM_PROCESSES }, (_, p) =>
      spawnTs('bench/heartbeats/sim.ts', {
        GATEWAY: address,
        COUNT: String(Math.min(per, NODES - p * per)),
        FIRST: String(p * per),
        SEPARATE: separate ? '1' : '0',
        SPREAD_MS: String(DEFAULT_HEARTBEAT_MS * 2),
      }),
    ),
  );
  return { sims: started.map((s) => s.child), registerS: (Date.now() - t0) / 1000 };
}

async function stopSims(gw: ChildProcess, sims: ChildProcess[]): Promise<void> {
  await Promise.all(
    sims.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.exitCode !== null) return resolve();
          s.once('exit', () => resolve());
          s.kill('SIGTERM');
          setTimeout(() => s.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
  await waitForNodes(gw, 0, 30);
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const rows: Array<Array<string | number>> = [];
const notes: string[] = [];
const results: unknown[] = [];
/** Per mode, one entry per run: µs per heartbeat, gateway heap per node (KiB), registration CPU (ms). */
const summary: Record<string, { perHb: number[]; heapKiB: number[]; regMs: number[] }> = {};

for (let run = 1; run <= RUNS; run++) {
  const load = loadavg()[0]!.toFixed(2);
  const gwProc = await spawnTs('bench/heartbeats/gateway.ts', { METRICS_PATH: join(dir, `metrics-${run}.db`) });
  const gw = gwProc.child;
  const address = `127.0.0.1:${gwProc.line.split(' ')[1]}`;
  await sleep(5000); // let start-up work (module loading, JIT, the first GCs) finish
  await ask<GwStats>(gw, 'gcstats', 'SIGHUP'); // collect start-up garbage now, not in the idle window
  await sleep(1000);
  const idle = await measure(gw, []);
  const runResult: Record<string, unknown> = { run, loadavg1: load, idle };
  const loaded: Array<{ label: string; w: Window }> = [];
  for (const mode of MODES) {
    const before = await ask<GwStats>(gw, 'stats');
    const { sims, registerS } = await startSims(address, mode === 'separate');
    const reg = await waitForNodes(gw, NODES, 60);
    await sleep(SETTLE_S * 1000);
    const w = await measure(gw, sims);
    loaded.push({ label: `${NODES} nodes, ${mode === 'shared' ? 'pooled connections' : 'one connection each'}`, w });
    const expected = (w.end.nodes * 1000) / DEFAULT_HEARTBEAT_MS;
    const sum = (k: 'disconnected' | 'refused' | 'errors') => w.sims!.reduce((n, s) => n + s[k], 0);
    const lastError = w.sims!.find((s) => s.lastError)?.lastError;
    const g = w.end;
    const churn = `gateway joins ${g.joined - before.joined}, lost ${g.lost - before.lost}${g.lost > before.lost ? ` (last: ${g.lastLost})` : ''}, refused ${g.refused - before.refused}${g.refused > before.refused ? ` (last: ${g.lastRefused})` : ''}; nodes saw disconnects ${sum('disconnected')}, refusals ${sum('refused')}, errors ${sum('errors')}${lastError ? ` (last: ${lastError})` : ''}`;
    notes.push(
      `run ${run} ${mode}: ${reg.nodes} nodes registered in ${registerS.toFixed(1)} s (starts spread over 2 s), gateway CPU meanwhile ${((reg.userUs + reg.systemUs - before.userUs - before.systemUs) / 1000).toFixed(0)} ms; heartbeats ${w.heartbeatsPerS.toFixed(0)}/s counted vs ${expected}/s expected; pongs ${w.pongsPerS.toFixed(0)}/s; other frames ${w.otherPerS.toFixed(0)}/s; ${churn}; sim RSS ${w.sims!.map((s) => mib(s.rss)).join(' + ')} MiB; gateway heap after GC +${(((w.gc.heapUsed - idle.gc.heapUsed) / NODES) / 1024).toFixed(1)} KiB per node, RSS after GC +${(((w.gc.rss - idle.gc.rss) / NODES) / 1024).toFixed(1)} KiB per node`,
    );
    runResult[mode] = { registerS, window: w };
    const sm = (summary[mode] ??= { perHb: [], heapKiB: [], regMs: [] });
    sm.heapKiB.push((w.gc.heapUsed - idle.gc.heapUsed) / NODES / 1024);
    sm.regMs.push((reg.userUs + reg.systemUs - before.userUs - before.systemUs) / 1000);
    await stopSims(gw, sims);
    await sleep(2000);
  }
  const after = await measure(gw, []);
  runResult.after = after;
  results.push(runResult);
  notes.push(`run ${run}: 1-min load average at start ${load}; idle ${idle.cpuMsPerS.toFixed(1)} ms/s before, ${after.cpuMsPerS.toFixed(1)} after`);
  // Baseline: the idle window after the nodes left. The one before runs in the gateway's
  // first ~20 s, when V8's background threads still collect and compile start-up code
  // (8-12 ms/s here, against 2 ms/s once that is done); it is shown, not subtracted.
  const baseline = after.cpuMsPerS;
  const row = (label: string, w: Window) => {
    const extra = w.cpuMsPerS - baseline;
    rows.push([
      run,
      label,
      w.end.nodes,
      w.end.connections,
      w.cpuMsPerS.toFixed(1),
      w.end.nodes > 0 ? `${extra >= 0 ? '+' : ''}${extra.toFixed(1)}` : '–',
      w.heartbeatsPerS.toFixed(0),
      w.pongsPerS.toFixed(0),
      w.heartbeatsPerS > 0 ? ((extra * 1000) / w.heartbeatsPerS).toFixed(0) : '–',
      `${mib(w.gc.rss)} / ${mib(w.gc.heapUsed)}`,
      w.simCpuMsPerS === undefined ? '–' : w.simCpuMsPerS.toFixed(0),
    ]);
  };
  row('idle', idle);
  for (const [i, { label, w }] of loaded.entries()) {
    row(label, w);
    summary[MODES[i]!]!.perHb.push(((w.cpuMsPerS - baseline) * 1000) / w.heartbeatsPerS);
  }
  row('idle again (nodes gone)', after);
  gw.kill('SIGTERM');
}

// What one heartbeat and one ping weigh on the wire (protobuf, before gRPC/HTTP/2 framing).
const hbBytes = NodeFrame.encode({
  heartbeat: {
    cpuPercent: 57.25,
    memoryUsedBytes: Math.round(27.5 * 2 ** 30),
    memoryTotalBytes: 64 * 2 ** 30,
    gpus: [{ index: 0, utilizationPercent: 77, vramUsedBytes: Math.round(21.75 * 2 ** 30), vramTotalBytes: 40 * 2 ** 30 }],
    functions: [
      { name: 'train_model', inFlight: 2, queued: 0 },
      { name: 'preprocess', inFlight: 3, queued: 0 },
      { name: 'predict', inFlight: 4, queued: 0 },
    ],
    hasTelemetry: true,
  },
} as NodeFrame).finish().length;
const pingBytes = GatewayFrame.encode({ ping: { nonce: Math.round(performance.now() * 1000) } } as GatewayFrame).finish().length;

const range = (xs: number[], digits = 0) => {
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};
const modeName = { shared: 'pooled connections', separate: 'one connection per node' };
const findings = MODES.filter((m) => summary[m])
  .map((m) => `${modeName[m]}: ${range(summary[m]!.perHb)} µs of gateway CPU per heartbeat, ${range(summary[m]!.heapKiB, 1)} KiB of gateway heap per node, ${range(summary[m]!.regMs.map((x) => x / 1000), 1)} s of gateway CPU to register the ${NODES}`)
  .join('; ');

const md = table(
  ['run', 'gateway state', 'nodes', 'TCP conns', 'gateway CPU ms/s (= % of a core)', 'above idle (the "idle again" row)', 'heartbeats/s', 'pongs/s', 'µs CPU per heartbeat', 'RSS / heap MiB after GC', 'sim processes CPU ms/s'],
  rows,
);
console.log(md);
console.log(notes.join('\n'));
if (process.env.BENCH_JSON) console.log(JSON.stringify(results));

writeSection(
  'heartbeats',
  `## Heartbeat cost at the gateway (\`pnpm bench:heartbeats\`)

The gateway runs alone in a child process and reports its own \`process.cpuUsage()\` and memory; CPU is the delta over a ${WINDOW_S} s window, in ms per second (= % of one core). Each run measures it idle (0 nodes), then with ${NODES} simulated nodes, then idle again after they leave; "above idle" subtracts the idle-again window (the first idle window falls in the gateway's first 20 s, when V8's background threads are still busy with start-up garbage and compilation), and memory is read after a forced full GC. The nodes are real \`ComputeNode\`s (${SIM_PROCESSES} processes × ${Math.ceil(NODES / SIM_PROCESSES)}) with static telemetry (CPU, memory, one GPU, three functions with in-flight counts, set to 1–4 since no calls run; a ${hbBytes}-byte protobuf heartbeat) at the default interval (${DEFAULT_HEARTBEAT_MS} ms); starts are spread over ${(2 * DEFAULT_HEARTBEAT_MS) / 1000} s so the heartbeats spread over the interval; the window starts ${SETTLE_S} s after the gateway lists all ${NODES}. Every node has its own TCP connection, as separate machines would (ComputeNode gives its stream a private connection, so a client's traffic in the same process never shares it). Heartbeats/s are counted in the gateway process (a counter wrapped around its frame handler). The figure above idle also pays for the gateway's reply traffic: a ${pingBytes}-byte ping to every node once per heartbeat interval and the pong that answers it (the pongs/s column), and HTTP/2 flow-control and keepalive frames; so "µs per heartbeat" is the whole per-node, per-interval cost divided by the heartbeats received. ${RUNS} runs, each with a fresh gateway. Machine: ${machine()}; the gateway, the simulated nodes and other people's jobs share its cores, so expect noise between runs.

${md}

In short (${RUNS} runs): ${findings}. The sim-process column is the node side's cost (heartbeats, telemetry sampling and pongs of all ${NODES} nodes), for scale. Registration cost grows faster than the node count: every join re-checks the function's declaration against all its providers (\`FunctionEntry.refreshConfig\`).`,
);
stopAll();
process.exit(0);
