// Several gateways: the same nodes behind one, two and three gateways, with clients that
// spread their calls over the gateways themselves and clients that go through nginx (the
// shipped deploy/nginx configuration, `least_conn` over the same gateways). Every gateway,
// node and nginx is its own process; the clients run here. Per cell: calls/s, p50/p99,
// the gateways' CPU per call and how it split between them. Then failover: a gateway is
// SIGKILLed under load and started again, with one gateway and with two (clients direct,
// and through nginx). On a machine with few cores every process here shares them, so
// throughput is bounded by CPU, not by the number of gateways: CPU per call says what a
// gateway costs. Figures go to BENCHMARKS.md (section scale-out).
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { AdminClient, Client, type ClientOptions } from '@easyremote/client';
import { Control } from '../control.js';
import { freePort } from '../../test/support/cluster.js';
import { boundRun, machine, procCpuUs, spawnTs, stopAll, table, writeSection } from '../lib.js';
import { closedLoop, median, spread, type Cell } from '../overhead/load.js';
import { nginxAvailable, startNginx, type NginxProcess } from '../../test/support/nginx.js';

const GATEWAYS = 3;
const NODES = Number(process.env.BENCH_NODES ?? 2);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_S = 1;
/** Before the first round, every client runs this long: the first seconds of load in a process run cold code (several times slower). */
const FIRST_WARMUP_S = Number(process.env.BENCH_FIRST_WARMUP_S ?? 3);
const PAYLOAD = { id: 42, text: 'hello', values: [1, 2, 3] };
/** Failover: calls in flight, half of an idempotent function, half not, each held this long on the node. */
const FAILOVER_IN_FLIGHT = 32;
const HOLD_MS = 200;
const KILL_AFTER_MS = 1500;
const DOWN_MS = 1000;
const AFTER_RESTART_MS = 2500;
/** A hard bound on the whole run (the default settings finish in about two and a half minutes). */
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 120 + 1.5 * ROUNDS * 9 * (SECONDS + WARMUP_S));

boundRun('scale-out', DEADLINE_S);
const runStarted = performance.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) => console.log(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(3)} s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface GatewayProc {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  control: Control;
  child: import('node:child_process').ChildProcess;
  admin: AdminClient;
}

async function startGateway(name: string, port: number, peers: string[]): Promise<GatewayProc> {
  const { child } = await spawnTs('bench/scale-out/gateway.ts', { PORT: String(port), PEERS: peers.join(',') }, /^ready/, { control: true });
  const address = `127.0.0.1:${port}`;
  return { name, port, address, child, control: new Control(child, `gateway ${name}`), admin: new AdminClient(address, { timeoutMs: 2000 }) };
}

/** Resolves once every gateway lists every node as active. */
async function allRegistered(gws: GatewayProc[], timeoutMs = 20_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(gws.map((g) => g.admin.nodes().then((l) => l.filter((n) => n.state === 'active').length, () => -1)));
    if (counts.every((c) => c === NODES)) return;
    if (performance.now() > until) throw new Error(`nodes not registered on every gateway: ${counts.join(', ')}`);
    await sleep(50);
  }
}

// ---- Processes -----------------------------------------------------------------------
const names = ['A', 'B', 'C'];
const ports = await Promise.all(names.map(() => freePort()));
const addresses = ports.map((p) => `127.0.0.1:${p}`);
const gateways = await Promise.all(names.map((n, i) => startGateway(n, ports[i]!, addresses.filter((_, j) => j !== i))));
const nodes = await Promise.all(Array.from({ length: NODES }, (_, i) => spawnTs('bench/scale-out/node.ts', { GATEWAYS: addresses.join(','), NODE_ID: `node-${i + 1}` })));
await allRegistered(gateways);
log(`${GATEWAYS} gateways, ${NODES} nodes linked to each`);
const haveNginx = nginxAvailable();
if (!haveNginx) console.log('SKIP nginx: /usr/sbin/nginx is not installed (Debian package nginx-light); its rows are left out');
const proxies: Array<NginxProcess | undefined> = [];
for (let k = 1; k <= GATEWAYS; k++) proxies.push(haveNginx ? await startNginx(addresses.slice(0, k), await freePort()) : undefined);

// ---- Throughput ----------------------------------------------------------------------
interface Way {
  key: string;
  label: string;
  client(k: number): Client | undefined;
}
const ways: Way[] = [
  { key: 'direct', label: 'clients spread themselves (session)', client: (k) => new Client(addresses.slice(0, k)) },
  { key: 'nginx', label: 'through nginx (session)', client: (k) => (proxies[k - 1] ? new Client(proxies[k - 1]!.address) : undefined) },
  { key: 'nginx-unary', label: "through nginx (transport 'unary')", client: (k) => (proxies[k - 1] ? new Client(proxies[k - 1]!.address, { transport: 'unary' } as ClientOptions) : undefined) },
];
interface Measured {
  cells: Cell[];
  gwUsPerCall: number[];
  nginxUsPerCall: number[];
  /** The busiest gateway's share of the gateways' CPU. */
  busiest: number[];
}
const results = new Map<string, Measured>();
const clients = new Map<string, Client>();
for (const way of ways) {
  for (let k = 1; k <= GATEWAYS; k++) {
    const c = way.client(k);
    if (c === undefined) continue;
    clients.set(`${way.key}/${k}`, c);
    results.set(`${way.key}/${k}`, { cells: [], gwUsPerCall: [], nginxUsPerCall: [], busiest: [] });
  }
}
for (const client of clients.values()) await closedLoop(() => client.call('echo', [PAYLOAD]), IN_FLIGHT, FIRST_WARMUP_S);
log('warmed up');
for (let round = 1; round <= ROUNDS; round++) {
  for (const [key, client] of clients) {
    const k = Number(key.split('/')[1]);
    const call = () => client.call('echo', [PAYLOAD]);
    await closedLoop(call, IN_FLIGHT, WARMUP_S);
    const used = gateways.slice(0, k);
    const proxy = key.startsWith('nginx') ? proxies[k - 1] : undefined;
    const before = await Promise.all(used.map((g) => g.control.cpuUs()));
    const nginxBefore = proxy ? procCpuUs(proxy.child.pid!) : 0;
    const cell = await closedLoop(call, IN_FLIGHT, SECONDS);
    const after = await Promise.all(used.map((g) => g.control.cpuUs()));
    const spent = after.map((a, i) => a - before[i]!);
    const total = spent.reduce((s, x) => s + x, 0);
    const m = results.get(key)!;
    m.cells.push(cell);
    m.gwUsPerCall.push(total / cell.done);
    m.busiest.push(Math.max(...spent) / total);
    if (proxy) m.nginxUsPerCall.push((procCpuUs(proxy.child.pid!) - nginxBefore) / cell.done);
    log(`round ${round} ${key}: ${cell.rate.toFixed(0)} calls/s, p50 ${cell.p50.toFixed(2)} ms, p99 ${cell.p99.toFixed(2)} ms, gateways ${(total / cell.done).toFixed(1)} µs/call`);
  }
}
for (const c of clients.values()) c.close();

// ---- Failover ------------------------------------------------------------------------
interface Failover {
  label: string;
  inFlightAtKill: number;
  idemInFlight: number;
  idemFailed: number;
  onceInFlight: number;
  onceLost: number;
  /** Failures of calls in flight at the kill other than GATEWAY_LOST of the non-idempotent function. */
  otherFailures: string[];
  /** Calls started after the kill, and how many of them failed. */
  startedAfter: number;
  failedAfter: number;
  /** Kill → the last failure of a call that was in flight (ms). */
  lastFailureMs: number;
  /** Kill → the first call started after the kill that succeeded (ms). */
  firstSuccessAfterKillMs: number;
  /** The restarted gateway's ready line → its first served call (ms). */
  servingAfterRestartMs: number;
  /** The restarted gateway's ready line → every node registered on it again (ms). */
  nodesBackMs: number;
  slowestCallMs: number;
}

async function failover(label: string, victimIndex: number, client: Client): Promise<Failover> {
  const victim = gateways[victimIndex]!;
  // The client learns which functions are idempotent from the first replies.
  await Promise.all([client.call('hold_idem', [1]), client.call('hold_once', [1])]);
  const outcomes: Array<{ fn: string; startedAt: number; endedAt: number; code?: string }> = [];
  let stopping = false;
  const worker = async (fn: 'hold_idem' | 'hold_once') => {
    while (!stopping) {
      const startedAt = performance.now();
      try {
        await client.call(fn, [HOLD_MS], { timeout: 15_000 });
        outcomes.push({ fn, startedAt, endedAt: performance.now() });
      } catch (err) {
        outcomes.push({ fn, startedAt, endedAt: performance.now(), code: (err as { code?: string }).code ?? String(err) });
        // As a caller would: a moment before the next call, not a busy loop of failures.
        await sleep(20);
      }
    }
  };
  const workers = Array.from({ length: FAILOVER_IN_FLIGHT }, (_, i) => worker(i % 2 === 0 ? 'hold_idem' : 'hold_once'));
  await sleep(KILL_AFTER_MS);
  const killedAt = performance.now();
  victim.child.kill('SIGKILL');
  await new Promise((r) => (victim.child.exitCode !== null || victim.child.signalCode !== null ? r(undefined) : victim.child.once('exit', r)));
  await sleep(DOWN_MS);
  const restarted = await startGateway(victim.name, victim.port, addresses.filter((a) => a !== victim.address));
  const readyAt = performance.now();
  gateways[victimIndex] = restarted;
  victim.admin.close();
  let servingAt = NaN;
  let nodesBackAt = NaN;
  const until = readyAt + AFTER_RESTART_MS;
  while (performance.now() < until && (Number.isNaN(servingAt) || Number.isNaN(nodesBackAt))) {
    const [metrics, listed] = await Promise.all([restarted.admin.metrics().catch(() => undefined), restarted.admin.nodes().catch(() => [])]);
    if (Number.isNaN(servingAt) && (metrics?.live.overall.calls ?? 0) > 0) servingAt = performance.now();
    if (Number.isNaN(nodesBackAt) && listed.filter((n) => n.state === 'active').length === NODES) nodesBackAt = performance.now();
    await sleep(20);
  }
  await sleep(Math.max(0, until - performance.now()));
  stopping = true;
  await Promise.all(workers);
  const inFlight = outcomes.filter((o) => o.startedAt < killedAt && o.endedAt > killedAt);
  const failed = inFlight.filter((o) => o.code !== undefined);
  const after = outcomes.filter((o) => o.startedAt >= killedAt);
  const firstSuccess = outcomes.filter((o) => o.startedAt > killedAt && o.code === undefined).reduce((m, o) => Math.min(m, o.endedAt), Infinity);
  return {
    label,
    inFlightAtKill: inFlight.length,
    idemInFlight: inFlight.filter((o) => o.fn === 'hold_idem').length,
    idemFailed: failed.filter((o) => o.fn === 'hold_idem').length,
    onceInFlight: inFlight.filter((o) => o.fn === 'hold_once').length,
    onceLost: failed.filter((o) => o.fn === 'hold_once' && o.code === 'GATEWAY_LOST').length,
    otherFailures: [...new Set(failed.filter((o) => !(o.fn === 'hold_once' && o.code === 'GATEWAY_LOST')).map((o) => `${o.fn} ${o.code}`))],
    startedAfter: after.length,
    failedAfter: after.filter((o) => o.code !== undefined).length,
    lastFailureMs: failed.reduce((m, o) => Math.max(m, o.endedAt - killedAt), 0),
    firstSuccessAfterKillMs: firstSuccess - killedAt,
    servingAfterRestartMs: servingAt - readyAt,
    nodesBackMs: nodesBackAt - readyAt,
    slowestCallMs: Math.max(...outcomes.map((o) => o.endedAt - o.startedAt)),
  };
}

const failovers: Failover[] = [];
const scenarios: Array<{ label: string; victim: number; client: () => Client | undefined }> = [
  { label: '1 gateway, client direct', victim: 0, client: () => new Client(addresses[0]!) },
  { label: '2 gateways, client spreads itself (session)', victim: 1, client: () => new Client(addresses.slice(0, 2)) },
  { label: '2 gateways, client spreads itself (unary)', victim: 0, client: () => new Client(addresses.slice(0, 2), { transport: 'unary' }) },
  { label: "2 gateways, through nginx (unary)", victim: 1, client: () => (proxies[1] ? new Client(proxies[1].address, { transport: 'unary' }) : undefined) },
  { label: '2 gateways, through nginx (session)', victim: 0, client: () => (proxies[1] ? new Client(proxies[1].address) : undefined) },
];
for (const s of scenarios) {
  const client = s.client();
  if (client === undefined) continue;
  await allRegistered(gateways);
  const f = await failover(s.label, s.victim, client);
  client.close();
  failovers.push(f);
  log(`failover, ${s.label}: ${JSON.stringify(f)}`);
}
const loadAtEnd = loadavg()[0]!;

// ---- Report --------------------------------------------------------------------------
const us = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 0) : '–');
const rate = (x: number) => x.toFixed(0);
const pct = (x: number) => `${Math.round(x * 100)}%`;
const baseline = median(results.get('direct/1')!.cells.map((c) => c.rate));
const rows: Array<Array<string | number>> = [];
for (const way of ways) {
  for (let k = 1; k <= GATEWAYS; k++) {
    const m = results.get(`${way.key}/${k}`);
    if (m === undefined) continue;
    rows.push([
      way.label,
      k,
      spread(m.cells.map((c) => c.rate), rate),
      (median(m.cells.map((c) => c.rate)) / baseline).toFixed(2),
      spread(m.cells.map((c) => c.p50), ms),
      spread(m.cells.map((c) => c.p99), ms),
      spread(m.gwUsPerCall, us),
      k === 1 ? '–' : pct(median(m.busiest)),
      m.nginxUsPerCall.length > 0 ? spread(m.nginxUsPerCall, us) : '–',
    ]);
  }
}
const failRows = failovers.map((f) => [
  f.label,
  f.inFlightAtKill,
  `${f.idemFailed} of ${f.idemInFlight}`,
  `${f.onceLost} of ${f.onceInFlight}`,
  f.otherFailures.length > 0 ? f.otherFailures.join(', ') : 'none',
  `${f.failedAfter} of ${f.startedAfter}`,
  ms(f.lastFailureMs),
  ms(f.firstSuccessAfterKillMs),
  ms(f.nodesBackMs),
  ms(f.servingAfterRestartMs),
  ms(f.slowestCallMs),
]);

const body = `## Scale-out: several gateways

\`pnpm bench:scale-out\` (bench/scale-out/main.ts): ${GATEWAYS} gateway processes as shipped
(metrics in SQLite), ${NODES} node processes linked to every gateway, nginx
(\`${haveNginx ? 'deploy/nginx/easyremote.conf' : 'not installed: its rows are missing'}\`) in front of the first
1, 2 or 3 gateways; the clients run in the benchmark's process. Echo of a small object,
${IN_FLIGHT} calls in flight (closed loop), ${ROUNDS} rounds of ${SECONDS} s per cell after
${WARMUP_S} s of warm-up, rounds interleaved; median (min–max) over rounds. Machine:
${machine()}; load average ${loadAtStart.toFixed(1)} at the start and ${loadAtEnd.toFixed(1)} at
the end (other work shared the machine: figures are noisy, compare within one run).

Every process here shares ${cpus().length} cores, so calls/s is bounded by CPU, not by the
number of gateways: adding a gateway adds a process competing for the same cores. What
scales with more machines is what one gateway costs per call (gateway CPU, summed over
the gateways in use), and how evenly the calls spread (the busiest gateway's share of that CPU).
Spread over more gateways, each gateway has fewer calls per turn of its event loop to
batch into one message, which is the likely reason the summed CPU per call grows with the
number of gateways when the same load is split between them.

${table(['clients', 'gateways', 'calls/s', '÷ 1 gateway direct', 'p50 ms', 'p99 ms', 'gateway CPU µs/call', 'busiest gateway', 'nginx CPU µs/call'], rows)}

Through nginx a session is one stream, which nginx gives to one gateway for its whole
life: a client's session calls do not spread (a client opens more sessions only when its
writes back up). With \`transport: 'unary'\` each call is its own stream and nginx spreads
them (\`least_conn\`); nginx then holds one upstream connection per call in progress.

### Failover

A gateway SIGKILLed ${KILL_AFTER_MS} ms into a closed loop of ${FAILOVER_IN_FLIGHT} calls in flight (half of an
idempotent function, half of one that is not, each held ${HOLD_MS} ms on its node), started
again on the same port ${DOWN_MS} ms later (its process takes a second or two more to be
ready); the load runs on for ${AFTER_RESTART_MS} ms after it is ready. "restart →" columns count from
its ready line.
The callers retry nothing themselves (a failed call counts as failed; the caller waits 20 ms
before its next call). The client retries what is safe; the columns count what reached
the caller.

${table(['setup', 'in flight at kill', 'of them idempotent: failed', 'not idempotent: GATEWAY_LOST', 'other failures in flight', 'calls started after the kill: failed', 'kill → last failure in flight ms', 'kill → first new call answered ms', 'restart → nodes registered on it ms', 'restart → it serves a call ms', 'slowest call ms'], failRows)}

With one gateway every call in flight fails and nothing works until it is back. With two,
idempotent calls are sent to the other gateway (0 fail); calls of a function that is not
idempotent fail at once with \`GATEWAY_LOST\` (their outcome is unknown), and calls started
after the kill go to the live gateway. Through nginx the client sends an idempotent call
again through nginx, which passes it to a live gateway. A client's session through nginx
stays on the gateway nginx gave it, so the restarted gateway gets none of its calls until
the client opens another session ("–" when none came within the window); a client that
spreads by itself, or one using the unary transport through nginx, uses it again within
about a second or two.
`;
writeSection('scale-out', body);
console.log(body);
for (const p of proxies) await p?.stop();
for (const g of gateways) g.admin.close();
await stopAll();
void nodes;
process.exit(0);
