// A line-based control channel between a benchmark and its child processes, over the
// child's stdin and stdout: `<id> <command>` in, `ctl <id> <reply>` out. The child answers
// `cpu` (its own process.cpuUsage(), user + system, µs: every thread), `thread-cpu` (its
// main thread's alone, from /proc/thread-self/schedstat, µs; -1 where there is none) and `profile-start` /
// `profile-stop <file>` (a CPU profile of a window, through node:inspector), and exits
// when the pipe closes, so a benchmark that dies leaves no child behind.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import { createInterface } from 'node:readline';

/** Sampling interval of profiles, µs (the default, 1000, is too coarse for a few seconds). */
export const PROFILE_INTERVAL_US = 200;
const ASK_TIMEOUT_MS = 60_000;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

/** Child side: answers commands on stdin when started with `spawnTs(..., { control: true })`. */
export function serveControl(): void {
  if (process.env.BENCH_CONTROL !== '1') return;
  let session: Session | undefined;
  const handle = async (command: string, arg: string): Promise<string> => {
    switch (command) {
      case 'cpu': {
        const u = process.cpuUsage();
        return String(u.user + u.system);
      }
      case 'thread-cpu':
        // The control channel runs on the main thread: this is its CPU, worker threads left out.
        try {
          return String(Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000);
        } catch {
          return '-1';
        }
      case 'profile-start':
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
        await session.post('Profiler.start');
        return 'ok';
      case 'profile-stop': {
        if (!session) throw new Error('no profile running');
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        session = undefined;
        for (const node of profile.nodes as ProfileNode[]) toSourceLine(node.callFrame);
        writeFileSync(arg, JSON.stringify(profile));
        return 'ok';
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(command)}`);
    }
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [id, command = '', ...rest] = line.split(' ');
    handle(command, rest.join(' ')).then(
      (reply) => process.stdout.write(`ctl ${id} ${reply}\n`),
      (err: Error) => process.stdout.write(`ctl ${id} error ${err.message.replace(/\n/g, ' ')}\n`),
    );
  });
  // The benchmark is gone (or done with us): exit, which runs the exit hooks that clean up.
  lines.on('close', () => process.exit(0));
}

/**
 * tsx compiles the TypeScript sources, so profile lines are lines of its output; map them
 * back to the .ts source through the source map tsx registers, where there is one.
 */
function toSourceLine(frame: ProfileNode['callFrame']): void {
  if (!frame.url.startsWith('file:') || frame.lineNumber < 0) return;
  const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
  if (entry?.originalLine === undefined) return;
  // The TypeScript file and line (the map names the source as a URL, resolved against the .js file).
  if (entry.originalSource) frame.url = new URL(entry.originalSource, frame.url).href;
  frame.lineNumber = entry.originalLine;
  frame.columnNumber = entry.originalColumn ?? 0;
}

/** Parent side: sends commands to one child and matches its replies. */
export class Control {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: string) => void; reject: (err: Error) => void }>();

  constructor(
    private readonly child: ChildProcess,
    private readonly name: string,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^ctl (\d+) (.*)$/.exec(line);
      if (!m) return;
      const waiter = this.pending.get(Number(m[1]));
      this.pending.delete(Number(m[1]));
      if (m[2]!.startsWith('error ')) waiter?.reject(new Error(`${this.name}: ${m[2]!.slice(6)}`));
      else waiter?.resolve(m[2]!);
    });
    child.on('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`${this.name} exited (${signal ?? code}) with a command pending`));
      this.pending.clear();
    });
  }

  ask(command: string, timeoutMs = ASK_TIMEOUT_MS): Promise<string> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer ${JSON.stringify(command)} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.stdin!.write(`${id} ${command}\n`);
    });
  }

  /** The child's CPU time so far (user + system), µs. */
  async cpuUs(): Promise<number> {
    return Number(await this.ask('cpu'));
  }

  /** The child's main thread's CPU time so far, µs; negative where it cannot be read. */
  async threadCpuUs(): Promise<number> {
    return Number(await this.ask('thread-cpu'));
  }
}
