// What routing through the gateway costs, against real peers measured in the same run:
// an echo of a small object from one client process to (1) a plain grpc-js unary server,
// (2) the same server behind nginx grpc_pass, (3) a Moleculer service broker over TCP,
// (4) this project: gateway → compute node. Rounds interleave every peer at every level.
// Then, for this project: the gateway's CPU per call and where it goes (a CPU profile),
// 1 MiB and 16 MiB round trips, routing cost against the number of providers, and the
// cost of call metrics. A second gateway and node serve the same over TLS (client and
// node both verify the gateway), so TLS on against off is measured in the same rounds.
// Every server is its own process; see BENCHMARKS.md for the figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, type ClientOptions } from '@easyremote/client';
import { ServiceBroker } from 'moleculer';
import { Control, PROFILE_INTERVAL_US } from '../control.js';
import { freePort } from '../../test/support/cluster.js';
import { boundRun, machine, packagesMeasured, ROOT, spawnTs, stop, stopAll, table, writeSection } from '../lib.js';
import { summarizeProfile, type ProfileSummary } from './cpuprofile.js';
import { EchoClient } from './echo-service.js';
import { closedLoop, median, spread, type CallOnce, type Cell } from './load.js';
import { CALLER_NODE_ID, SERVICE_NODE_ID, brokerOptions } from './moleculer-peer.js';
import { NGINX_BIN, startNginx } from './nginx.js';
import { CertificateLab } from '../../test/support/certificates.js';

const LEVELS = [1, 16, 64];
const SATURATION = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const WARMUP_S = 1;
const PAYLOAD = { id: 42, text: 'hello', values: [1, 2, 3] };
const PROFILE_S = 3;
const TOP_FUNCTIONS = 15;
const BIG = [
  { label: '1 MiB', bytes: 2 ** 20, reps: 20 },
  { label: '16 MiB', bytes: 16 * 2 ** 20, reps: 15 },
];
const PROVIDERS = (process.env.BENCH_PROVIDERS ?? '1,16,100,1000').split(',').map(Number);
const NODES_PER_PROCESS = 500;
/** After the last provider registers: let registration work settle. */
const SETTLE_MS = 2000;
const IDLE_WINDOW_MS = 3000;
const SETUP_ROUNDS = 5;
/**
 * Heartbeat interval of the provider setups. At the default (1 s) a thousand providers
 * keep the gateway and their own processes busy (\`pnpm bench:heartbeats\` measures that);
 * here it would only be background load on the shared cores, so they beat every 30 s.
 */
const SETUP_HEARTBEAT_MS = 30_000;
const SETUP_WARMUP_S = 3;
/** A hard bound on the whole run (default settings finish in about 6 minutes). */
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 300 + 1.5 * ROUNDS * LEVELS.length * 4 * SECONDS);

const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-overhead-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
boundRun('overhead', DEADLINE_S);
const runStarted = performance.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) => console.log(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(3)} s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The routed columns' client, made here only: BENCH_TRANSPORT=unary picks the per-call transport over the default session. */
function routedClient(address: string, options: ClientOptions = {}): Client {
  const transport = process.env.BENCH_TRANSPORT as ClientOptions['transport'];
  return new Client(address, transport ? { ...options, transport } : options);
}


async function controlled(file: string, env: Record<string, string>, name: string, nodeArgs?: string[]) {
  const { child, line } = await spawnTs(file, env, /^ready/, { control: true, nodeArgs });
  return { child, line, control: new Control(child, name) };
}

interface ServerProcess {
  label: string;
  cpuUs(): Promise<number> | number;
}
interface Peer {
  key: string;
  label: string;
  call: CallOnce;
  /** The processes that serve its calls, whose CPU per call is read at saturation. */
  servers: ServerProcess[];
}

// ---- Servers and clients -------------------------------------------------------------
const direct = await controlled('bench/overhead/direct-server.ts', {}, 'direct server');
const directPort = Number(direct.line.split(' ')[1]);
const nginx = await startNginx(await freePort(), directPort);
if (!nginx) console.log(`SKIP nginx: ${NGINX_BIN} is not installed (Debian package nginx-light); its column is left out`);
const [servicePort, callerPort] = [await freePort(), await freePort()];
const moleculer = await controlled('bench/overhead/moleculer-service.ts', { PORT: String(servicePort), CALLER_PORT: String(callerPort) }, 'moleculer service');
const gw = await controlled('bench/overhead/gateway.ts', { METRICS_PATH: join(dir, 'metrics-on.db') }, 'gateway');
const gwAddress = `127.0.0.1:${gw.line.split(' ')[1]}`;
const node = await controlled('bench/overhead/node.ts', { GATEWAY: gwAddress }, 'node');
const lab = new CertificateLab();
process.on('exit', () => lab.remove());
const ca = lab.ca('bench-ca');
const served = lab.issue(ca, 'gateway', { cn: '127.0.0.1', san: 'IP:127.0.0.1', usage: 'serverAuth' });
const gwTls = await controlled('bench/overhead/gateway.ts', { METRICS_PATH: join(dir, 'metrics-tls.db'), TLS_CERT: served.cert, TLS_KEY: served.key }, 'gateway (TLS)');
const gwTlsAddress = `127.0.0.1:${gwTls.line.split(' ')[1]}`;
const nodeTls = await controlled('bench/overhead/node.ts', { GATEWAY: gwTlsAddress, TLS_CA: ca.cert }, 'node (TLS)');

const plain = new EchoClient(`127.0.0.1:${directPort}`);
const viaNginx = nginx ? new EchoClient(`127.0.0.1:${nginx.port}`) : undefined;
const caller = new ServiceBroker({ ...brokerOptions(CALLER_NODE_ID, callerPort, SERVICE_NODE_ID, servicePort), skipProcessEventRegistration: true });
await caller.start();
await caller.waitForServices('echo', 30_000);
const routed = routedClient(gwAddress);
const routedTls = routedClient(gwTlsAddress, { tls: { ca: ca.cert } });

const peers: Peer[] = [
  { key: 'direct', label: 'direct grpc-js unary', call: () => plain.echo(PAYLOAD), servers: [{ label: 'direct server', cpuUs: () => direct.control.cpuUs() }] },
  ...(viaNginx && nginx
    ? [
        {
          key: 'nginx',
          label: 'nginx grpc_pass → grpc-js',
          call: () => viaNginx.echo(PAYLOAD),
          servers: [
            { label: 'nginx', cpuUs: () => nginx.cpuUs() },
            { label: 'direct server (behind nginx)', cpuUs: () => direct.control.cpuUs() },
          ],
        },
      ]
    : []),
  { key: 'moleculer', label: 'Moleculer (TCP, 1 hop)', call: () => caller.call('echo.echo', PAYLOAD), servers: [{ label: 'Moleculer service broker', cpuUs: () => moleculer.control.cpuUs() }] },
  {
    key: 'routed',
    label: 'EasyRemote routed (gateway → node)',
    call: () => routed.call('echo', [PAYLOAD]),
    servers: [
      { label: 'gateway', cpuUs: () => gw.control.cpuUs() },
      { label: 'node', cpuUs: () => node.control.cpuUs() },
    ],
  },
  {
    key: 'routed-tls',
    label: 'EasyRemote routed over TLS',
    call: () => routedTls.call('echo', [PAYLOAD]),
    servers: [
      { label: 'gateway (TLS)', cpuUs: () => gwTls.control.cpuUs() },
      { label: 'node (TLS)', cpuUs: () => nodeTls.control.cpuUs() },
    ],
  },
];
const others = peers.filter((p) => p.key !== 'routed');
const routedPeer = peers.find((p) => p.key === 'routed')!;
log(`servers up: ${peers.map((p) => p.key).join(', ')}`);

// ---- Rounds: every peer at every level, order rotating --------------------------------
for (const p of peers) {
  await closedLoop(p.call, 16, WARMUP_S);
  await closedLoop(p.call, SATURATION, WARMUP_S);
}
const cells = new Map<string, Cell[]>();
/** µs of CPU per call at saturation, per `peer|server`, one figure per round. */
const cpuPerCall = new Map<string, number[]>();
const push = <T>(m: Map<string, T[]>, k: string, v: T) => m.set(k, [...(m.get(k) ?? []), v]);

async function measured(peer: Peer, level: number, seconds: number): Promise<{ cell: Cell; cpu: number[] }> {
  const before = await Promise.all(peer.servers.map((s) => s.cpuUs()));
  const cell = await closedLoop(peer.call, level, seconds);
  const after = await Promise.all(peer.servers.map((s) => s.cpuUs()));
  return { cell, cpu: after.map((a, i) => (a - before[i]!) / cell.done) };
}

for (let round = 0; round < ROUNDS; round++) {
  for (const [li, level] of LEVELS.entries()) {
    const shift = (round + li) % peers.length;
    for (const peer of [...peers.slice(shift), ...peers.slice(0, shift)]) {
      const { cell, cpu } = await measured(peer, level, SECONDS);
      push(cells, `${peer.key}|${level}`, cell);
      if (level === SATURATION) peer.servers.forEach((s, i) => push(cpuPerCall, `${peer.key}|${s.label}`, cpu[i]!));
    }
  }
  log(`round ${round + 1}/${ROUNDS}: ${peers.map((p) => `${p.key} ${Math.round(cells.get(`${p.key}|${SATURATION}`)!.at(-1)!.rate)}/s`).join(', ')} at ${SATURATION} in flight`);
}

// ---- Where the gateway's CPU goes -----------------------------------------------------
const profileFile = join(dir, 'gateway.cpuprofile');
await gw.control.ask('profile-start');
const profiled = await measured(routedPeer, SATURATION, PROFILE_S);
await gw.control.ask(`profile-stop ${profileFile}`);
const profile: ProfileSummary = summarizeProfile(profileFile, ROOT, TOP_FUNCTIONS);
log(`profiled ${profiled.cell.done} calls`);

// ---- Large payloads -------------------------------------------------------------------
// Per round trip also the CPU each process spent on it: the client (this process), and
// the servers (direct server; gateway and node), read over their control channels.
// 'noHeadroom' is the same routed path through a second gateway and node that hold no heap
// headroom (heapHeadroomBytes: 0), so V8 chooses its growing factor itself (docs/operations.md,
// "Large payloads"): what that default of the gateway and the node is worth.
type BigSide = 'direct' | 'routed' | 'noHeadroom';
const BIG_SIDES: readonly BigSide[] = ['direct', 'routed', 'noHeadroom'];
const gwBare = await controlled('bench/overhead/gateway.ts', { METRICS_PATH: join(dir, 'metrics-no-headroom.db'), HEAP_HEADROOM: '0' }, 'gateway (no heap headroom)');
const gwBareAddress = `127.0.0.1:${gwBare.line.split(' ')[1]}`;
const nodeBare = await controlled('bench/overhead/node.ts', { GATEWAY: gwBareAddress, HEAP_HEADROOM: '0' }, 'node (no heap headroom)');
const routedBare = new Client(gwBareAddress);
type BigCpu = { client: number[]; servers: number[][] };
type BigRow = { label: string } & Record<BigSide, number[]> & { cpu: Record<BigSide, BigCpu> };
const big: BigRow[] = [];
const bigServers: Record<BigSide, Control[]> = { direct: [direct.control], routed: [gw.control, node.control], noHeadroom: [gwBare.control, nodeBare.control] };
for (const size of BIG) {
  const buf = Buffer.alloc(size.bytes, 0x5a);
  const sides: Record<BigSide, () => Promise<unknown>> = { direct: () => plain.echo(buf), routed: () => routed.call('echo', [buf]), noHeadroom: () => routedBare.call('echo', [buf]) };
  const row: BigRow = {
    label: size.label,
    direct: [],
    routed: [],
    noHeadroom: [],
    cpu: { direct: { client: [], servers: [[]] }, routed: { client: [], servers: [[], []] }, noHeadroom: { client: [], servers: [[], []] } },
  };
  const time = async (side: BigSide, keep: boolean) => {
    const servers = bigServers[side];
    const s0 = await Promise.all(servers.map((c) => c.cpuUs()));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const back = (await sides[side]()) as Uint8Array;
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const s1 = await Promise.all(servers.map((c) => c.cpuUs()));
    if (back.length !== size.bytes) throw new Error(`echo of ${size.label} came back with ${back.length} bytes`);
    if (!keep) return;
    row[side].push(ms);
    row.cpu[side].client.push((c1.user + c1.system) / 1000);
    servers.forEach((_, i) => row.cpu[side].servers[i]!.push((s1[i]! - s0[i]!) / 1000));
  };
  for (const side of BIG_SIDES) await time(side, false);
  for (let i = 0; i < size.reps; i++) {
    // Rotating order, so that no path always follows the same one.
    for (let j = 0; j < BIG_SIDES.length; j++) await time(BIG_SIDES[(i + j) % BIG_SIDES.length]!, true);
  }
  big.push(row);
}
log('large payloads done');

// The peers are done.
plain.close();
viaNginx?.close();
routed.close();
routedBare.close();
routedTls.close();
await caller.stop();
await nginx?.stop();
await stopAll();

// ---- Providers and metrics: gateway setups side by side, measured in rounds ------------
// One fresh gateway per setup, each with its own compute nodes and client, all running at
// once so that rounds can interleave them as the peers above are interleaved; only the
// setup being measured gets calls.
interface Setup {
  label: string;
  providers: number;
  metrics: boolean;
  /** The gateway's default strategy when not the shipped one. */
  strategy?: string;
  /** The gateway's coalesceFrames (default on). */
  coalesce: boolean;
  gateway: Control;
  call: CallOnce;
  close(): void;
  /** Gateway CPU with no calls, µs per s: heartbeats of its providers. */
  idleRate: number;
  rate: number[];
  raw: number[];
  aboveIdle: number[];
  /** The gateway's main thread alone (the metrics writer thread left out), µs per call. */
  mainThread: number[];
  /** The second of two setups started alike (metrics off, one provider). */
  twin: boolean;
}
const setups: Setup[] = [];
// One provider as shipped, then beside it the two setups compared with it alone: metrics
// off and the gateway's frame coalescing off (each pair measured seconds apart, in every
// round, since a ratio of two windows far apart takes in the machine's drift too); then
// the other provider counts with the shipped strategy, and the most providers with
// pick_first (every call to the same node: what is left of the difference is not routing
// but fanning calls out over many node streams) and with round_robin (O(1) routing, every
// call to the next node: the fan-out alone).
const most = Math.max(...PROVIDERS);
type Configuration = readonly [providers: number, metrics: boolean, strategy?: string, coalesce?: boolean, twin?: boolean];
const configurations: Configuration[] = [];
for (const n of PROVIDERS) {
  configurations.push([n, true]);
  // Metrics off twice: two gateways started alike show how far apart two processes measure.
  if (n === 1) configurations.push([1, false], [1, false, undefined, true, true], [1, true, undefined, false]);
}
if (most > 1) configurations.push([most, true, 'pick_first'], [most, true, 'round_robin']);
for (const [providers, metrics, strategy, coalesce = true, twin = false] of configurations) {
  const label = `${providers} provider${providers === 1 ? '' : 's'}, metrics ${metrics ? 'on' : 'off'}${strategy ? `, ${strategy}` : ''}${coalesce ? '' : ', coalescing off'}${twin ? ' (a second gateway)' : ''}`;
  const g = await controlled(
    'bench/overhead/gateway.ts',
    { HEARTBEAT_MS: String(SETUP_HEARTBEAT_MS), ...(strategy ? { STRATEGY: strategy } : {}), ...(coalesce ? {} : { COALESCE: 'off' }), ...(metrics ? { METRICS_PATH: join(dir, `setup-${setups.length}.db`) } : { METRICS: 'off' }) },
    `gateway (${label})`,
  );
  const address = `127.0.0.1:${g.line.split(' ')[1]}`;
  await Promise.all(
    Array.from({ length: Math.ceil(providers / NODES_PER_PROCESS) }, (_, k) => {
      const count = Math.min(NODES_PER_PROCESS, providers - k * NODES_PER_PROCESS);
      return spawnTs('bench/overhead/node.ts', { GATEWAY: address, COUNT: String(count), FIRST: String(k * NODES_PER_PROCESS), SPREAD_MS: String(Math.min(2000, 2 * count)) });
    }),
  );
  const client = routedClient(address);
  setups.push({ label, providers, metrics, gateway: g.control, call: () => client.call('echo', [PAYLOAD]), close: () => client.close(), idleRate: 0, rate: [], raw: [], aboveIdle: [], mainThread: [], coalesce, twin, ...(strategy ? { strategy } : {}) });
}
log(`setups up: ${setups.map((s) => s.label).join('; ')}`);
await sleep(SETTLE_MS);
// Warm up first: a young gateway's V8 threads are still compiling and collecting start-up
// garbage, which process.cpuUsage() counts.
for (const s of setups) await closedLoop(s.call, SATURATION, SETUP_WARMUP_S);
// Providers send heartbeats whether or not calls run; read every gateway's CPU over one
// window with no calls, so the per-call figures can leave that out.
const idleBefore = await Promise.all(setups.map((s) => s.gateway.cpuUs()));
const idleT0 = performance.now();
await sleep(IDLE_WINDOW_MS);
const idleAfter = await Promise.all(setups.map((s) => s.gateway.cpuUs()));
const idleS = (performance.now() - idleT0) / 1000;
setups.forEach((s, i) => (s.idleRate = (idleAfter[i]! - idleBefore[i]!) / idleS));
for (let round = 0; round < SETUP_ROUNDS; round++) {
  // Forward in even rounds, backward in odd ones: neighbours stay neighbours, and each
  // setup is measured early and late in turn.
  for (const s of round % 2 === 0 ? setups : [...setups].reverse()) {
    const before = await s.gateway.cpuUs();
    const threadBefore = await s.gateway.threadCpuUs();
    const cell = await closedLoop(s.call, SATURATION, SECONDS);
    const used = (await s.gateway.cpuUs()) - before;
    s.mainThread.push(((await s.gateway.threadCpuUs()) - threadBefore) / cell.done);
    s.rate.push(cell.rate);
    s.raw.push(used / cell.done);
    s.aboveIdle.push((used - s.idleRate * cell.seconds) / cell.done);
  }
  log(`setup round ${round + 1}/${SETUP_ROUNDS}: ${setups.map((s) => `${s.label} ${Math.round(s.rate.at(-1)!)}/s ${s.raw.at(-1)!.toFixed(0)} µs`).join(', ')}`);
}
// Where the extra CPU goes when there are many providers.
const many = setups.filter((s) => s.metrics && s.strategy === undefined && s.coalesce).at(-1)!;
const manyProfileFile = join(dir, 'gateway-many.cpuprofile');
await many.gateway.ask('profile-start');
await closedLoop(many.call, SATURATION, PROFILE_S);
await many.gateway.ask(`profile-stop ${manyProfileFile}`);
const manyProfile = summarizeProfile(manyProfileFile, ROOT, TOP_FUNCTIONS);
for (const s of setups) s.close();
await stopAll();
// The floor under those figures: the same fan-out, one stream against `most`, in a server
// with no project code (bench/overhead/fanout-floor.ts), over grpc-js and over bare node:http2.
interface Floor {
  impl: string;
  count: number;
  one: number[];
  many: number[];
}
const floors: Floor[] = [];
if (most > 1) {
  for (const impl of ['grpc-js', 'http2']) {
    const { child, line } = await spawnTs('bench/overhead/fanout-floor.ts', { IMPL: impl, COUNT: String(most), ROUNDS: String(SETUP_ROUNDS), WINDOW_S: String(SECONDS) }, /^result /, { readyTimeoutMs: 180_000 });
    floors.push(JSON.parse(line.slice('result '.length)) as Floor);
    await stop([child]);
    log(`fan-out floor over ${impl}: 1 stream ${median(floors.at(-1)!.one).toFixed(1)} µs, ${most} streams ${median(floors.at(-1)!.many).toFixed(1)} µs per round trip`);
  }
}
const providerRuns = setups.filter((s) => s.metrics && s.strategy === undefined && s.coalesce);
const pickFirstRun = setups.find((s) => s.strategy === 'pick_first');
const roundRobinRun = setups.find((s) => s.strategy === 'round_robin');
const metricsRuns = { on: providerRuns.find((s) => s.providers === 1)!, off: setups.find((s) => !s.metrics && !s.twin)!, twin: setups.find((s) => s.twin)! };
const uncoalesced = setups.find((s) => !s.coalesce)!;
const totalS = (performance.now() - runStarted) / 1000;

// ---- Report ---------------------------------------------------------------------------
const f0 = (x: number) => String(Math.round(x));
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const f3 = (x: number) => x.toFixed(3);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const peerCells = (key: string, level: number) => cells.get(`${key}|${level}`)!;
/** Routed ÷ peer, per round (the two were measured minutes apart at most), for `get`. */
const perRoundRatio = (key: string, level: number, get: (c: Cell) => number) => peerCells('routed', level).map((c, r) => get(c) / get(peerCells(key, level)[r]!));

const mainRows: Array<Array<string | number>> = [];
for (const level of LEVELS) {
  for (const p of peers) {
    const cs = peerCells(p.key, level);
    const isRouted = p.key === 'routed';
    mainRows.push([
      level,
      isRouted ? `**${p.label}**` : p.label,
      spread(cs.map((c) => c.rate), f0),
      spread(cs.map((c) => c.p50), f3),
      spread(cs.map((c) => c.p99), f3),
      isRouted ? '–' : spread(perRoundRatio(p.key, level, (c) => c.rate), f2),
      isRouted ? '–' : spread(perRoundRatio(p.key, level, (c) => c.p50), f2),
    ]);
  }
}
const mainTable = table(['in flight', 'peer', 'calls/s', 'p50 ms', 'p99 ms', 'routed ÷ peer, calls/s', 'routed ÷ peer, p50'], mainRows);

const cpuRows = peers.flatMap((p) => p.servers.map((s) => [p.label, s.label, spread(cpuPerCall.get(`${p.key}|${s.label}`)!, f1)]));
const cpuTable = table(['peer', 'process', `CPU µs per call at ${SATURATION} in flight`], cpuRows);

const profileTable = table(
  ['#', 'function', 'where (source line)', 'kind', 'self ms', 'share of gateway busy time'],
  profile.top.map((t, i) => [i + 1, `\`${t.functionName}\``, t.location ? `\`${t.location}\`` : '', t.kind, f1(t.selfMs), pct(t.share)]),
);
const kindLine = profile.byKind.map((k) => `${k.kind} ${pct(k.share)}`).join(', ');
const ownLine = profile.topOwn
  .slice(0, 8)
  .map((t) => `\`${t.functionName}\` (\`${t.location}\`) ${pct(t.share)}`)
  .join(', ');

const bigTable = table(
  ['payload', 'reps', 'direct grpc-js ms per round trip', 'routed ms per round trip', 'routed ÷ direct time', 'routed speed ÷ direct', 'routed, no heap headroom: ms', 'no headroom speed ÷ direct'],
  big.map((b) => [
    b.label,
    b.direct.length,
    spread(b.direct, f1),
    spread(b.routed, f1),
    f2(median(b.routed) / median(b.direct)),
    f2(median(b.direct) / median(b.routed)),
    spread(b.noHeadroom, f1),
    f2(median(b.direct) / median(b.noHeadroom)),
  ]),
);
const BIG_SIDE_LABEL: Record<BigSide, string> = { direct: 'direct', routed: 'routed', noHeadroom: 'routed, no heap headroom' };
const bigCpuTable = table(
  ['payload', 'path', 'client CPU ms', 'server CPU ms', 'all processes CPU ms', 'wall ms', 'CPU ÷ wall'],
  big.flatMap((b) =>
    BIG_SIDES.map((side) => {
      const c = b.cpu[side];
      const total = c.client.map((x, i) => x + c.servers.reduce((sum, srv) => sum + srv[i]!, 0));
      const serverCell = side === 'direct' ? f1(median(c.servers[0]!)) : `${f1(median(c.servers[0]!))} (gateway) + ${f1(median(c.servers[1]!))} (node)`;
      return [b.label, BIG_SIDE_LABEL[side], f1(median(c.client)), serverCell, f1(median(total)), f1(median(b[side])), f2(median(total.map((t, i) => t / b[side][i]!)))];
    }),
  ),
);

/** For the 16 MiB row: what total CPU a routed round trip at 0.8 × direct could use at most, against the direct path's. */
const bigBound = (() => {
  const b = big.find((x) => x.label === '16 MiB')!;
  const total = (c: BigCpu) => median(c.client.map((x, i) => x + c.servers.reduce((sum, srv) => sum + srv[i]!, 0)));
  const directCpu = total(b.cpu.direct);
  const directOverlap = directCpu / median(b.direct);
  return { directOverlap, allowed: (cpus().length * (median(b.direct) / 0.8)) / directCpu, actual: total(b.cpu.routed) / directCpu };
})();
const one = providerRuns[0]!;
const thousand = providerRuns.find((r) => r.providers === 1000);
/** a ÷ b per round (both measured in the same round), for drift between rounds. */
const roundRatios = (a: number[], b: number[]) => a.map((x, r) => x / b[r]!);
const providerTable = table(
  ['providers', 'calls/s', 'gateway idle CPU ms/s', 'gateway CPU µs per call', 'µs per call above idle', 'above idle ÷ 1 provider', 'raw ÷ 1 provider'],
  [...providerRuns, ...(pickFirstRun ? [pickFirstRun] : []), ...(roundRobinRun ? [roundRobinRun] : [])].map((r) => [
    `${r.providers.toLocaleString('en')}${r.strategy ? ` (${r.strategy})` : ''}`,
    spread(r.rate, f0),
    f1(r.idleRate / 1000),
    spread(r.raw, f1),
    spread(r.aboveIdle, f1),
    r === one ? '1' : spread(roundRatios(r.aboveIdle, one.aboveIdle), f2),
    r === one ? '1' : spread(roundRatios(r.raw, one.raw), f2),
  ]),
);

const metricsShares = metricsRuns.on.raw.map((on, r) => (on - metricsRuns.off.raw[r]!) / on);
const metricsShare = median(metricsShares);
// The gateway's main thread alone: what recording costs the thread every call goes through.
const hasThreadCpu = metricsRuns.on.mainThread.every((x) => x >= 0) && metricsRuns.off.mainThread.every((x) => x >= 0);
const threadShares = metricsRuns.on.mainThread.map((on, r) => (on - metricsRuns.off.mainThread[r]!) / on);
const threadShare = median(threadShares);
// Two gateways started alike (both metrics off): how far apart two processes measure, the
// resolution of any on-versus-off difference between processes.
const twinShares = (hasThreadCpu ? metricsRuns.off.mainThread : metricsRuns.off.raw).map((a, r) => Math.abs(a - (hasThreadCpu ? metricsRuns.twin.mainThread : metricsRuns.twin.raw)[r]!) / a);
const twinShare = median(twinShares);
// Recording measured inside the shipped gateway itself: the self time of the metrics code
// (row, live windows, Prometheus cells, the chunk for the writer thread) on its main thread,
// from the profile above (metrics on, one provider, at saturation), as a share of
// that thread's busy time. One process, so no other process's variance enters it.
const isRecording = (e: { location: string }) => /^packages\/gateway\/(src|dist)\/metrics\//.test(e.location);
const recordingShare = profile.all.filter(isRecording).reduce((sum, e) => sum + e.share, 0);
const recordingTop = profile.all.filter(isRecording).slice(0, 5);
const metricsTable = table(
  ['gateway metrics (1 provider)', 'calls/s', `gateway process CPU µs per call at ${SATURATION} in flight`, 'of which its main thread'],
  [
    ['off (`metrics: false`)', spread(metricsRuns.off.rate, f0), spread(metricsRuns.off.raw, f1), hasThreadCpu ? spread(metricsRuns.off.mainThread, f1) : '–'],
    ['off, a second gateway started alike', spread(metricsRuns.twin.rate, f0), spread(metricsRuns.twin.raw, f1), hasThreadCpu ? spread(metricsRuns.twin.mainThread, f1) : '–'],
    ['on (`metrics: { path }`, SQLite file)', spread(metricsRuns.on.rate, f0), spread(metricsRuns.on.raw, f1), hasThreadCpu ? spread(metricsRuns.on.mainThread, f1) : '–'],
  ],
);
const coalescingTable = table(
  ['gateway (1 provider, metrics on)', 'calls/s', `gateway CPU µs per call at ${SATURATION} in flight`, 'of which its main thread'],
  [
    ['frames of a turn coalesced (shipped)', spread(metricsRuns.on.rate, f0), spread(metricsRuns.on.raw, f1), hasThreadCpu ? spread(metricsRuns.on.mainThread, f1) : '–'],
    ['`coalesceFrames: false` (a message per frame)', spread(uncoalesced.rate, f0), spread(uncoalesced.raw, f1), hasThreadCpu ? spread(uncoalesced.mainThread, f1) : '–'],
  ],
);
const coalescingCpu = median(roundRatios(uncoalesced.raw, metricsRuns.on.raw));
const coalescingRate = median(roundRatios(metricsRuns.on.rate, uncoalesced.rate));
const fanOut = pickFirstRun && thousand ? median(roundRatios(pickFirstRun.aboveIdle, one.aboveIdle)) : undefined;
const spreadOnly = roundRobinRun && thousand ? median(roundRatios(roundRobinRun.aboveIdle, one.aboveIdle)) : undefined;
/** What the 1,000-provider target allows the gateway per call: 1.2 × its cost with one provider (above idle). */
const providerBudget = 1.2 * median(one.aboveIdle);
const floorOf = (impl: string) => floors.find((f) => f.impl === impl);
const floorTable = table(
  ['server running no project code', 'CPU µs per round trip, 1 stream', `${most.toLocaleString('en')} streams`, `${most.toLocaleString('en')} ÷ 1`],
  floors.map((f) => [f.impl === 'http2' ? 'bare `node:http2` streams' : 'grpc-js bidi streams (raw buffers)', spread(f.one, f1), spread(f.many, f1), spread(roundRatios(f.many, f.one), f0)]),
);
const floorText = (() => {
  const g = floorOf('grpc-js');
  const h = floorOf('http2');
  if (g === undefined || h === undefined) return '';
  return `The fan-out has a floor that no routing can lower. A server that runs no project code at all (\`bench/overhead/fanout-floor.ts\`) keeps ${SATURATION} round trips of a 96-byte message going over long-lived streams, one per node connection (each node process opens ${NODES_PER_PROCESS} at most, each its own connection), and sends what it has for a stream in one turn of its event loop as one message, as the gateway does: either every round trip on one stream, or each on the next of ${most.toLocaleString('en')}. The two take turns in ${SETUP_ROUNDS} windows of ${SECONDS} s, in one process, after the gateways above have stopped; median (min–max) of its CPU per round trip:

${floorTable}

The target allows the gateway 1.2 × its whole cost per call with one provider (${f1(median(one.aboveIdle))} µs above idle in this run) when the function has ${most.toLocaleString('en')}: **${f1(providerBudget)} µs** per call for everything, the client's session, routing, dispatch, the node link and both codecs. Fanning calls out over ${most.toLocaleString('en')} connections alone costs a server that does nothing else **${f1(median(g.many))} µs** per round trip on grpc-js, the library the project is built on (${f2(median(g.many) / median(one.aboveIdle))} × the gateway's whole one-provider cost), and **${f1(median(h.many))} µs** on bare \`node:http2\` with no gRPC library at all (${f2(median(h.many) / median(one.aboveIdle))} ×), before any of the gateway's other work. On grpc-js that is above the allowance by itself; on bare HTTP/2 it would leave ${f1(Math.max(0, providerBudget - median(h.many)))} µs for the work that costs the gateway about ${f1(Math.max(0, median(one.aboveIdle) - median(h.one)))} µs with one provider. Only a gateway that kept the calls on a few providers could meet the bound, as \`pick_first\` does above, and that is not balancing load.`;
})();
const manyTable = table(
  ['#', 'function', 'where (source line)', 'kind', 'share of gateway busy time'],
  manyProfile.top.slice(0, 8).map((t, i) => [i + 1, `\`${t.functionName}\``, t.location ? `\`${t.location}\`` : '', t.kind, pct(t.share)]),
);

// Targets, from the medians above.
const ratioAt = (key: string, level: number, get: (c: Cell) => number) => median(perRoundRatio(key, level, get));
const gatewayCpu = median(cpuPerCall.get('routed|gateway')!);
const sixteenMiB = big.find((b) => b.label === '16 MiB')!;
const targets: Array<[string, string, boolean | undefined]> = [
  [`routed calls/s at ${SATURATION} in flight ≥ 1.5 × direct grpc-js`, `${f2(ratioAt('direct', SATURATION, (c) => c.rate))} ×`, ratioAt('direct', SATURATION, (c) => c.rate) >= 1.5],
  [`routed calls/s at ${SATURATION} in flight ≥ 0.3 × Moleculer`, `${f2(ratioAt('moleculer', SATURATION, (c) => c.rate))} ×`, ratioAt('moleculer', SATURATION, (c) => c.rate) >= 0.3],
  ['routed p50 at 1 in flight ≤ 1.2 × direct grpc-js', `${f2(ratioAt('direct', 1, (c) => c.p50))} ×`, ratioAt('direct', 1, (c) => c.p50) <= 1.2],
  [`gateway CPU per call at ${SATURATION} in flight ≤ 40 µs`, `${f1(gatewayCpu)} µs`, gatewayCpu <= 40],
  [
    'gateway CPU per call with 1,000 providers ≤ 1.2 × with 1 (above idle)',
    thousand
      ? `${f2(median(roundRatios(thousand.aboveIdle, one.aboveIdle)))} × (raw ${f2(median(roundRatios(thousand.raw, one.raw)))} ×)${fanOut !== undefined ? `; pick_first ${f2(fanOut)} ×` : ''}${spreadOnly !== undefined ? `, round_robin ${f2(spreadOnly)} ×` : ''}${floorOf('grpc-js') && floorOf('http2') ? `; the fan-out alone, with no project code, costs ${f1(median(floorOf('grpc-js')!.many))} µs per call on grpc-js and ${f1(median(floorOf('http2')!.many))} µs on node:http2, against the ${f1(providerBudget)} µs this bound allows` : ''}`
      : 'not run',
    thousand ? median(roundRatios(thousand.aboveIdle, one.aboveIdle)) <= 1.2 : undefined,
  ],
  ['16 MiB round trip: routed speed ≥ 0.8 × direct', `${f2(median(sixteenMiB.direct) / median(sixteenMiB.routed))} ×`, median(sixteenMiB.direct) / median(sixteenMiB.routed) >= 0.8],
  [
    "recording calls (metrics on) ≤ 3% of the gateway's CPU: its main thread, where every call is handled, measured in the gateway's own profile (end to end, on versus off between processes, in brackets)",
    `${pct(recordingShare)} (end to end: main thread ${hasThreadCpu ? pct(threadShare) : 'not measured'}, whole process with the writer thread ${pct(metricsShare)}; two gateways started alike differ by ${pct(twinShare)})`,
    recordingShare <= 0.03,
  ],
  [
    `TLS on ÷ off, calls/s at ${SATURATION} in flight (informational)`,
    `${f2(1 / ratioAt('routed-tls', SATURATION, (c) => c.rate))} × (gateway CPU per call ${f1(median(cpuPerCall.get('routed-tls|gateway (TLS)')!))} µs against ${f1(gatewayCpu)} µs)`,
    undefined,
  ],
  [`TLS on ÷ off, p50 at 1 in flight (informational)`, `${f2(1 / ratioAt('routed-tls', 1, (c) => c.p50))} ×`, undefined],
];
const targetTable = table(
  ['target', 'this run', 'met'],
  targets.map(([t, v, ok]) => [t, v, ok === undefined ? '–' : ok ? 'yes' : '**no**']),
);

const command = `pnpm bench:overhead${process.env.BENCH_ROUNDS ? ` (BENCH_ROUNDS=${ROUNDS})` : ''}${process.env.BENCH_SECONDS ? ` (BENCH_SECONDS=${SECONDS})` : ''}${process.env.BENCH_TRANSPORT ? ` (BENCH_TRANSPORT=${process.env.BENCH_TRANSPORT})` : ''}`;
const md = `## Gateway overhead against real peers (\`pnpm bench:overhead\`)

An echo of a small object (\`${JSON.stringify(PAYLOAD)}\`), measured in one run against four peers; the client side of all four lives in one process, every server in its own:

- **direct grpc-js unary**: a plain grpc-js server with one unary method whose messages are MessagePack (no protobuf envelope), called by one \`makeGenericClientConstructor\` client: plain grpc-js at its best, one hop.
- **nginx grpc_pass → grpc-js**: the same client through Debian's nginx (${NGINX_BIN}, one process, \`grpc_pass\` to a \`keepalive\` upstream, configuration in a temp dir), then the same server: two hops, like the gateway.${nginx ? '' : ' **Skipped in this run: nginx is not installed.**'}
- **Moleculer**: moleculer 0.14.36, a caller broker calling action \`echo.echo\` on a service broker over the TCP transporter (static addresses, no UDP discovery; default JSON serializer), one hop.
- **EasyRemote routed**: \`@easyremote/client\` → gateway → compute node, each its own process: two hops, the second over the node's bidirectional stream; the gateway as shipped (default strategy, every call recorded in an SQLite file), the node with its default telemetry.${process.env.BENCH_TRANSPORT ? ` Client option \`transport: ${process.env.BENCH_TRANSPORT}\`.` : ''}
- **EasyRemote routed over TLS**: the same, with a second gateway serving TLS (an ECDSA P-256 certificate from a CA made for the run) and its own node; client and node verify the gateway against that CA. Its "routed ÷ peer" columns are TLS off ÷ TLS on.

Every EasyRemote process (client, gateways, nodes) runs ${packagesMeasured()}.

${ROUNDS} rounds; each round runs every peer at 1, 16 and ${SATURATION} calls in flight (closed loop: each caller issues its next call when the last answers) for ${SECONDS} s per cell, peers in rotating order, after a warm-up. Figures are the **median across rounds (min–max)**; "routed ÷ peer" is the ratio within each round (the two measured at most a few seconds apart), then its median and spread: above 1 for calls/s and below 1 for p50 favour this project. Machine: ${machine()}; the client process and every server share its cores, and other people's jobs were running on it (1-minute load average ${loadAtStart.toFixed(1)} at the start of the run, ${loadavg()[0]!.toFixed(1)} at the end, on ${cpus().length} cores), so absolute figures are noisy. Command: \`${command}\` (${Math.round(totalS)} s in all; \`BENCH_ROUNDS\`, \`BENCH_SECONDS\` per cell).

${mainTable}

### Targets

${targetTable}

### CPU per call at ${SATURATION} in flight, per server process

Each process's own \`process.cpuUsage()\` (nginx: \`/proc/<pid>/stat\`, 10 ms ticks) read over the control channel (its stdin and stdout) just before and after each measured cell, divided by the calls the cell completed; median (min–max) across rounds.

${cpuTable}

### Where the gateway's CPU goes

One more ${PROFILE_S} s window at ${SATURATION} in flight (${profiled.cell.done} calls, ${f1(profiled.cpu[0]!)} µs of gateway CPU per call while profiled) with the gateway's V8 sampling profiler on (\`node:inspector\`, ${PROFILE_INTERVAL_US} µs interval). Self time per function and source line (mapped back to the TypeScript source), as a share of the gateway's busy time (${f1(profile.busyMs)} ms of ${f1(profile.wallMs)} ms; the rest idle). By kind: ${kindLine}.

${profileTable}

This project's own heaviest functions: ${ownLine || 'none sampled'}.

### Large payloads

The echo of a Buffer of that size, one call at a time, direct (the plain grpc-js client and server above) and routed alternating; first call of each discarded. Median (min–max) ms per round trip.

${bigTable}

The CPU each process spent per round trip in the same calls (the client's \`process.cpuUsage()\`, each server's over its control channel; medians):

${bigCpuTable}

The routed path moves every byte through three processes, each of which decodes and re-encodes it (the node also runs the function: MessagePack decode of the argument, encode of the result), where the direct path has two. With every process on the same 2 cores, the round trip cannot take less than the CPU of all processes ÷ 2, and the processes can only overlap as far as the parts pipeline: a routed 16 MiB round trip at 0.8 × direct would need the three processes' CPU together within ${f2(bigBound.allowed)} × the direct path's even if they overlapped perfectly on the ${cpus().length} cores (the direct path's CPU ÷ wall is ${f2(bigBound.directOverlap)}); this run's is ${f2(bigBound.actual)} ×. Over look-aside (\`pnpm bench:seed-lookaside\`) the bytes skip the gateway, and a 16 MiB round trip runs at about direct speed.

"Routed, no heap headroom" is the same path through a second gateway and node started with \`heapHeadroomBytes: 0\`: V8 chooses its heap growing factor itself, as it did before both held 64 MiB of headroom by default. V8 counts the buffer memory allocated since its last full collection against the old generation's limit, which it sets about 8 MB above a small live heap once the process has run a while; relaying or echoing 16 MiB allocates a few times that in short-lived buffers between two scavenges, so such a process runs a full collection every few MB (several per round trip, each finding almost nothing). The headroom keeps that limit at least 64 MiB above the live heap (docs/operations.md, "Large payloads").

### Routing cost against the number of providers

One fresh gateway per provider count (as shipped, except that nodes are asked for a heartbeat every ${SETUP_HEARTBEAT_MS / 1000} s instead of every second, so that a thousand idle providers do not load the cores the other setups are measured on; \`pnpm bench:heartbeats\` measures what heartbeats cost), each with N compute nodes serving \`echo\` (any of them may be picked, so every one answers; ${NODES_PER_PROCESS} per process at most, each node with its own connection, fixed telemetry) and its own client; default strategy. All the setups below (and the metrics-off one) run side by side and are measured in ${SETUP_ROUNDS} rounds, in the order of the table (one provider, then metrics off and coalescing off beside it, then the other counts) in even rounds and the reverse in odd ones, ${SECONDS} s at ${SATURATION} in flight each, after a ${SETUP_WARMUP_S} s warm-up each; median (min–max); the ratios to 1 provider are taken within each round, then their median (min–max). Providers send heartbeats whether or not calls run, and gateways have timers of their own, so each gateway's CPU was also read over one ${IDLE_WINDOW_MS / 1000} s window with no calls (after the warm-up); "above idle" subtracts that rate over the window, leaving what calls cost. The other setups stay up, idle, during every window.

${providerTable}

${fanOut !== undefined && spreadOnly !== undefined ? `The last two rows are the same ${pickFirstRun!.providers.toLocaleString('en')} providers routed by \`pick_first\` and by \`round_robin\`. With \`pick_first\` every call goes to one node, so frames to it are coalesced as with one provider: ${f2(fanOut)} × one provider above idle, so holding a thousand providers costs a call nothing. With \`round_robin\` (O(1) routing, a counter) each call goes to the next node: ${f2(spreadOnly)} × one provider. That difference is the fan-out itself: each call is a write of its own on a different node stream (a gRPC message, an HTTP/2 DATA frame, a syscall, and a read on the way back), where one provider's ${SATURATION} calls in flight share a few batched writes. The default strategy's row adds to that the scoring of its 16-candidate sample (\`SAMPLE_SIZE\` in \`packages/gateway/src/routing/router.ts\`).` : ''}

${floorText}

With ${many.providers.toLocaleString('en')} providers, the gateway's heaviest functions (one more ${PROFILE_S} s profiled window; by kind: ${manyProfile.byKind.map((k) => `${k.kind} ${pct(k.share)}`).join(', ')}):

${manyTable}

### Call metrics on versus off

Recording a finished call (its row copied into a columnar chunk for the writer thread, the live windows, the Prometheus cells) runs on the gateway's main thread, where every call is handled; the rows are written to SQLite by the metrics writer thread. Measured inside the shipped gateway, from the profile in "Where the gateway's CPU goes" (metrics on, one provider, ${SATURATION} in flight), the metrics code's self time is **${pct(recordingShare)}** of the main thread's busy time${recordingTop.length > 0 ? ` (${recordingTop.map((e) => `\`${e.functionName}\` ${pct(e.share)}`).join(', ')})` : ''}. That is one process's own time, so it is exact up to the profiler's sampling; it leaves out what recording might cost the rest of the code indirectly (caches, the writer thread's load on the shared cores), which only a comparison between processes can show.

Three of the setups above, one provider each, measured in the same rounds, next to each other: the gateway as shipped (\`metrics: { path }\`, an SQLite file), one with \`metrics: false\`, and a second \`metrics: false\` gateway started the same way. (on − off) ÷ on within each round, median across rounds: the main thread **${hasThreadCpu ? pct(threadShare) : 'not measured'}**${hasThreadCpu ? ` (min ${pct(Math.min(...threadShares))}, max ${pct(Math.max(...threadShares))})` : ''}, the whole process with the writer thread **${pct(metricsShare)}** (min ${pct(Math.min(...metricsShares))}, max ${pct(Math.max(...metricsShares))}). The two gateways started alike differ by **${pct(twinShare)}** (median of |a − b| ÷ a across rounds, max ${pct(Math.max(...twinShares))}${hasThreadCpu ? ', main thread' : ''}): two processes doing the same work measure that far apart here, so a difference between processes smaller than that says nothing. Main-thread CPU is read from \`/proc/thread-self/schedstat\`; \`pnpm bench:metrics\` takes recording apart in one process.

${metricsTable}

### Frame coalescing on versus off

Two of the setups above, one provider each, metrics on: the gateway as shipped, which sends the frames it produces for a node or a session in one turn of its event loop as one message (a lone frame as itself, at once on a quiet stream), and one with \`coalesceFrames: false\`, a message per frame, measured in the same rounds (the client and the node batch their own frames in both). Coalescing ${coalescingRate >= 1 ? 'raises' : 'changes'} calls/s by **${f2(coalescingRate)} ×** and the gateway's CPU per call without it is **${f2(coalescingCpu)} ×** that with it (ratios within each round, median across rounds).

${coalescingTable}`;

console.log(md);
writeSection('overhead', md);
process.exit(0);
