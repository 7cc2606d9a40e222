// Shared by the benchmarks: child processes, percentiles, and BENCHMARKS.md sections.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export interface SpawnOptions {
  /**
   * Pipe the child's stdin for a control channel (`bench/control.ts`): sets BENCH_CONTROL=1
   * so the child answers commands there, and exits when the pipe closes.
   */
  control?: boolean;
  /** Node options before the script (V8 flags that NODE_OPTIONS refuses, e.g. --min-semi-space-size). */
  nodeArgs?: string[];
  /** How long the child may take to print the line awaited (default 30 s). */
  readyTimeoutMs?: number;
}

/** Runs a TypeScript file as a child process and resolves when it prints `ready` (or a line matching). */
export async function spawnTs(file: string, env: Record<string, string> = {}, ready = /^ready/, options: SpawnOptions = {}): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', file], {
    cwd: ROOT,
    // Lifecycle logs of hundreds of simulated nodes would drown the tables: warnings and errors only, unless asked.
    env: { ...process.env, EASYREMOTE_LOG_LEVEL: process.env.EASYREMOTE_LOG_LEVEL ?? 'warn', ...env, ...(options.control ? { BENCH_CONTROL: '1' } : {}) },
    stdio: [options.control ? 'pipe' : 'ignore', 'pipe', 'inherit'],
  });
  track(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    const readyMs = options.readyTimeoutMs ?? 30_000;
    const timer = setTimeout(() => reject(new Error(`${file} did not get ready in ${readyMs / 1000} s`)), readyMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (ready.test(line)) {
          clearTimeout(timer);
          resolve({ child, line });
        }
      }
      if (buf.length > 10_000) buf = buf.slice(-1000);
    });
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
  });
}

/** Counts a process started elsewhere (not by spawnTs) among the children stopped at exit. */
/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat on Linux. */
const CLOCK_TICKS_PER_S = 100;

/** A process's CPU time so far (user + system), µs, from /proc (10 ms resolution). */
export function procCpuUs(pid: number): number {
  // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_S;
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Ends the run on SIGINT / SIGTERM, and with exit code 1 after `deadlineS` seconds (a hard
 * bound: a benchmark that hangs does not hold the machine). process.exit runs the exit
 * hook above, which SIGKILLs every child.
 */
export function boundRun(name: string, deadlineS: number): void {
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  setTimeout(() => {
    console.error(`bench:${name}: still running after ${deadlineS} s (BENCH_DEADLINE_S); stopping`);
    process.exit(1);
  }, deadlineS * 1000).unref();
}

/** SIGTERM to each (they clean up their temp files), then SIGKILL to any still running after `graceMs`. */
export async function stop(list: Iterable<ChildProcess>, graceMs = 3000): Promise<void> {
  const live = [...list];
  for (const c of live) c.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(live.map(exited)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(live.map(exited));
}

/**
 * Asks every child to exit; resolves once all have (SIGKILL after `graceMs`). Callers that
 * exit at once without awaiting still get the SIGTERM, and the exit hook SIGKILLs stragglers.
 */
export function stopAll(graceMs = 3000): Promise<void> {
  return stop(children, graceMs);
}

/**
 * CPU time of the calling thread so far (µs), from Linux's per-thread schedstat (ns
 * precision); undefined where there is none. process.cpuUsage() counts every thread,
 * worker threads included, so it cannot say what one thread spent.
 */
export function threadCpuUs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
  } catch {
    return undefined;
  }
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? 'unknown CPU'}, ${c.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

/**
 * Which code the EasyRemote processes of a run execute. The bench scripts in package.json
 * build first and set TSX_TSCONFIG_PATH=bench/tsconfig.json (no `paths`), so
 * `@easyremote/*` resolves to each package's `dist/` (what npm ships); run with the root
 * tsconfig, tsx loads the TypeScript sources instead, and its esbuild transform names
 * every function created at run time (`__name`), which costs a call several per cent.
 */
export function packagesMeasured(): string {
  return import.meta.resolve('@easyremote/gateway').includes('/dist/')
    ? 'the packages as built (`pnpm build`: the `dist/` that npm ships)'
    : '**the TypeScript sources through tsx** (not the build: run it with its package.json script)';
}

export function table(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

/** Replaces the section between `<!-- bench:NAME -->` markers in BENCHMARKS.md (adds it if missing). */
export function writeSection(name: string, body: string): void {
  const file = `${ROOT}/BENCHMARKS.md`;
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nEvery figure comes from `pnpm bench` (or the per-benchmark command named in its section) on the machine named there. Figures are ratios against a baseline measured in the same run, because the machines are shared and noisy.\n';
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}

/** Small seeded PRNG (mulberry32, uniform in [0, 1)): the same sequence for the same seed, so runs repeat. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
