// Test support: the `easyremote` command line as a child process on 127.0.0.1. It runs
// from the build (packages/*/dist, what `pnpm build` and CI make) when the build is newer
// than every source file, which starts three times faster; else from the TypeScript
// source through tsx, so a test never runs stale code.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cluster.js';

const PACKAGES = ['protocol', 'node', 'client', 'gateway', 'cli'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Whether every package's build is newer than each of its source files. */
function buildIsFresh(): boolean {
  return PACKAGES.every((pkg) => {
    const info = join(ROOT, 'packages', pkg, 'tsconfig.tsbuildinfo');
    return existsSync(info) && existsSync(join(ROOT, 'packages', pkg, 'dist')) && statSync(info).mtimeMs >= newestSource(join(ROOT, 'packages', pkg, 'src'));
  });
}

export const CLI_BUILT = buildIsFresh();
const BUILT_MAIN = join(ROOT, 'packages/cli/dist/main.js');
const SOURCE_MAIN = join(ROOT, 'packages/cli/src/main.ts');

/**
 * The command that runs `easyremote`, as argv. `typescript`: the command loads TypeScript
 * of its own (a node module under test/fixtures), so tsx is loaded in any case.
 */
export function cliCommand(typescript = false): string[] {
  if (!CLI_BUILT) return [process.execPath, '--import', 'tsx', SOURCE_MAIN];
  return typescript ? [process.execPath, '--import', 'tsx', BUILT_MAIN] : [process.execPath, BUILT_MAIN];
}

/** The environment without any EASYREMOTE_* variable of the test run's own, plus `env`. */
export function cliEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EASYREMOTE_')));
  return { ...base, ...env };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first stdout line that matches (rejects when the process exits first or the time is up). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<CliResult>;
  signal(signal: NodeJS.Signals): void;
}

/** Starts `easyremote <args>`; it runs until it exits. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const [cmd, ...pre] = cliCommand(args.some((a) => a.endsWith('.ts')));
  const child = spawn(cmd!, [...pre, ...args], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of [...listeners]) l();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<CliResult>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })));
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const l of [...listeners]) l();
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const line of out.split('\n')) {
            const m = line.match(pattern);
            if (m) return done(() => resolve(m));
          }
          if (gone) done(() => reject(new Error(`easyremote ${args.join(' ')} exited before printing ${pattern}; stdout: ${out.slice(-1000)} stderr: ${err.slice(-2000)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`easyremote ${args.join(' ')}: no line ${pattern} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`))), timeoutMs);
        const done = (f: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** The JSON log lines (pino, as written when stderr is not a terminal) among what a process wrote to stderr. */
export function logEntries(stderr: string): Array<Record<string, unknown> & { level: string; msg: string }> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { level: string; msg: string });
}

/** Runs `easyremote <args>` to its end (killed after `timeoutMs`). */
export async function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  const p = startCli(args, env);
  const timer = setTimeout(() => p.signal('SIGKILL'), timeoutMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `easyremote gateway` on a free port with a given metrics database; resolves once it listens. */
export async function startCliGateway(args: readonly string[], env: Record<string, string> = {}): Promise<CliProcess & { address: string; httpPort: number | undefined }> {
  const p = startCli(['gateway', '--port', '0', ...args], env);
  const m = await p.waitForLine(/^gateway listening on (127\.0\.0\.1:\d+)(?:, HTTP API on 127\.0\.0\.1:(\d+))?$/);
  return Object.assign(p, { address: m[1]!, httpPort: m[2] === undefined ? undefined : Number(m[2]) });
}
