// Stand-ins for the runner's and the link's surroundings: a wall clock whose timers fire
// only when told, a link that records what it is asked to send, invocations, and handlers
// the test finishes by hand.
import { encodeArgs, type Invoke, type NodeFrame } from '@easyremote/protocol';
import type { CallLink, RunnerClock } from '../src/call-runner.js';
import { currentCall } from '../src/context.js';

export const T0 = 1_700_000_000_000;

export class FakeClock implements RunnerClock {
  t = T0;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => void (timer.live = false);
  }

  /** Moves time on and fires the timers that come due, in order. */
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) return;
      due.live = false;
      due.fn();
    }
  }

  /** Moves time on without firing anything, as if the process had been stopped. */
  jump(ms: number): void {
    this.t += ms;
  }
}

export class FakeLink implements CallLink {
  maxPayloadBytes = 1024 * 1024;
  readonly sent: NodeFrame[] = [];
  live = true;
  /** send() answers false (buffer full) while set. */
  full = false;
  private waiters: Array<() => void> = [];

  send(frame: NodeFrame): boolean {
    this.sent.push(frame);
    return !this.full;
  }

  isLive(): boolean {
    return this.live;
  }

  writable(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  drain(): void {
    this.full = false;
    for (const w of this.waiters.splice(0)) w();
  }

  /** The frames sent for one attempt, by kind: ['chunk', 'chunk', 'end']. */
  kinds(attemptId: number): string[] {
    return this.sent.filter((f) => attemptOf(f) === attemptId).map((f) => Object.keys(f).find((k) => f[k as keyof NodeFrame] !== undefined)!);
  }

  errorCode(attemptId: number): string | undefined {
    return this.sent.find((f) => f.error?.attemptId === attemptId)?.error?.error?.code;
  }
}

function attemptOf(f: NodeFrame): number | undefined {
  return (f.result ?? f.error ?? f.chunk ?? f.end ?? f.progress)?.attemptId;
}

let nextAttempt = 1;

export function invokeOf(fn: string, args: unknown[] = [], extra: Partial<Invoke> = {}): Invoke {
  const attemptId = nextAttempt++;
  return {
    attemptId,
    argsSize: 0,
    portableResult: false,
    caller: '',
    callId: attemptId,
    attempt: 1,
    function: fn,
    args: args.length === 0 ? Buffer.alloc(0) : encodeArgs(args),
    deadlineUnixMs: 0,
    metadata: {},
    initialCredit: 0,
    wantProgress: false,
    ...extra,
  };
}

/** A handler whose calls wait until the test settles them; it records each start and signal. */
export function manualHandler() {
  const started: Array<{ arg: unknown; signal: AbortSignal; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  const handler = (arg: unknown) => {
    const signal = currentCall().signal;
    return new Promise((resolve, reject) => started.push({ arg, signal, resolve, reject }));
  };
  return { handler, started, args: () => started.map((s) => s.arg) };
}

/** Lets promise chains and setImmediate callbacks run. */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
