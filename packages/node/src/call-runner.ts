// Runs the calls a node's gateway links hand it, with one scheduler and one set of limits
// for all of them: admission, deadlines, abort signals and currentCall(), stream credit,
// generator and worker-thread functions, result encoding and the payload limit.
//
// A call belongs to the link it came on, and replies go back on that link or nowhere.
// When the link is lost the call is fenced: the gateway has already answered its caller
// (or retried it elsewhere), so a queued call must never start, a running one is told to
// stop, and nothing more is sent for it, on that stream or a later one.
import { performance } from 'node:perf_hooks';
import {
  Cancelled,
  DeadlineExceeded,
  EasyRemoteError,
  FunctionNotFound,
  InvalidArgument,
  NodeLost,
  Overloaded,
  partBytesWithin,
  PayloadTooLarge,
  RemoteError,
  decodeArgs,
  encodeResult,
  encodeResultSegments,
  SegmentedBytes,
  type FunctionLoad,
  type Invoke,
  type ResultProfile,
  type NodeFrame,
} from '@easyremote/protocol';
import { CallAbort } from './call-abort.js';
import { runWithContext, type CallContext } from './context.js';
import type { RegisteredFunction } from './registered-function.js';
import { Scheduler, type Job } from './scheduler.js';

/** Retry hint for a call refused because its function's queue is full. */
export const FULL_RETRY_AFTER_MS = 100;

/** The link a call came on, as the runner sees it. */
export interface CallLink {
  /** Largest result the link's gateway accepts, bytes. */
  readonly maxPayloadBytes: number;
  /** Writes one frame on the link's stream; false when its buffer is full (see writable()). */
  send(frame: NodeFrame): boolean;
  /**
   * Whether the link's calls may still start and reply. Once its stream is gone, or its
   * lease has run out, it answers false, and a link that finds this out fences its calls
   * (linkLost) before answering.
   */
  isLive(): boolean;
  /** Resolves when a full stream buffer has room again, or the stream is gone. */
  writable(): Promise<void>;
}

/** Wall-clock time and timers: deadlines travel as epoch milliseconds. */
export interface RunnerClock {
  now(): number;
  /** Runs `fn` after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const SYSTEM_CLOCK: RunnerClock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

export interface CallRunnerOptions {
  nodeId: string;
  /** Calls running at once across all functions (default unlimited). */
  maxConcurrent?: number;
  clock?: RunnerClock;
  /** Told when the last call in progress or waiting has ended. */
  onIdle?: () => void;
}

/** A function as the node declares it; the runner adds its admission slot. */
export type FunctionDefinition = Omit<RegisteredFunction, 'owner'>;

interface Call {
  readonly link: CallLink;
  readonly invoke: Invoke;
  readonly fn: RegisteredFunction;
  readonly aborter: CallAbort;
  /** Set while the call waits for a slot. */
  job: Job | undefined;
  cancelDeadline: (() => void) | undefined;
  credit: number;
  creditWaiter: (() => void) | undefined;
  /** Its link was lost: it must not start, and nothing more is sent for it. */
  fenced: boolean;
  finished: boolean;
}

export class CallRunner {
  private readonly nodeId: string;
  private readonly clock: RunnerClock;
  private readonly onIdle: () => void;
  private readonly scheduler: Scheduler;
  private readonly fns = new Map<string, RegisteredFunction>();
  /** Attempt ids are unique per gateway only, so calls are kept per link. */
  private readonly calls = new Map<CallLink, Map<number, Call>>();
  private count = 0;
  private accepting = true;
  /**
   * Invocations whose arguments are still arriving in parts, per link. Each part is copied
   * into `args` (sized as announced) as it arrives, so the frames that carried it die
   * young instead of waiting for the last part. The announced size is reserved when the
   * invocation comes (collectArgs refuses one above the gateway's payload limit first).
   */
  private readonly collecting = new Map<CallLink, Map<number, { invoke: Invoke; args: Buffer; received: number }>>();

  constructor(options: CallRunnerOptions) {
    this.nodeId = options.nodeId;
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.onIdle = options.onIdle ?? (() => undefined);
    this.scheduler = new Scheduler(options.maxConcurrent ?? Infinity);
  }

  /** Adds a function with its own admission slot; names must be unique (the node checks). */
  add(definition: FunctionDefinition): RegisteredFunction {
    const o = definition.options;
    const owner = this.scheduler.owner(definition.name, o.maxConcurrent, o.queueSize, o.priority ?? 0);
    const fn: RegisteredFunction = { ...definition, owner };
    this.fns.set(fn.name, fn);
    return fn;
  }

  has(name: string): boolean {
    return this.fns.has(name);
  }

  /** A function the node serves, by name. */
  definition(name: string): RegisteredFunction | undefined {
    return this.fns.get(name);
  }

  get functions(): RegisteredFunction[] {
    return [...this.fns.values()];
  }

  /** Calls in progress or waiting, over all links. */
  get activeCalls(): number {
    return this.count;
  }

  /** Per function: calls running and waiting on this node, whichever link they came on. */
  load(): FunctionLoad[] {
    return this.functions.map((f) => ({ name: f.name, inFlight: f.owner.running, queued: f.owner.queue.length }));
  }

  invoke(link: CallLink, invoke: Invoke): void {
    if (invoke.argsSize > invoke.args.length) {
      this.collectArgs(link, invoke);
      return;
    }
    const fn = this.fns.get(invoke.function);
    if (fn === undefined) {
      this.refuse(link, invoke.attemptId, new FunctionNotFound(`function ${invoke.function} is not served by node ${this.nodeId}`));
      return;
    }
    if (!this.accepting) {
      this.refuse(link, invoke.attemptId, new Overloaded(`node ${this.nodeId} is draining`, { retryAfterMs: 0 }));
      return;
    }
    let ofLink = this.calls.get(link);
    if (ofLink?.has(invoke.attemptId)) return; // a duplicate invoke: the first one answers
    const call: Call = {
      link,
      invoke,
      fn,
      aborter: new CallAbort(),
      job: undefined,
      cancelDeadline: undefined,
      credit: invoke.initialCredit,
      creditWaiter: undefined,
      fenced: false,
      finished: false,
    };
    // Tracked before admission: a call may start, and even end, inside admit().
    if (ofLink === undefined) this.calls.set(link, (ofLink = new Map()));
    ofLink.set(invoke.attemptId, call);
    this.count++;
    const { admission, job } = this.scheduler.admit(fn.owner, () => this.begin(call));
    if (admission === 'refused') {
      this.untrack(call);
      const limit = `maxConcurrent=${fn.owner.maxConcurrent}, queueSize=${fn.owner.queueSize}`;
      this.refuse(link, invoke.attemptId, new Overloaded(`${fn.name} on node ${this.nodeId} is full (${limit})`, { retryAfterMs: FULL_RETRY_AFTER_MS }));
      return;
    }
    if (admission === 'queued') {
      call.job = job;
      this.armDeadline(call);
    }
  }

  /** The next part of an invocation's arguments; the call goes on once they are all here. */
  argsPart(link: CallLink, attemptId: number, data: Buffer): void {
    const ofLink = this.collecting.get(link);
    const pending = ofLink?.get(attemptId);
    if (ofLink === undefined || pending === undefined) return;
    const size = pending.invoke.argsSize;
    if (pending.received + data.length > size) {
      ofLink.delete(attemptId);
      this.refuse(link, attemptId, new InvalidArgument(`the arguments of ${pending.invoke.function} came to more than the ${size} bytes announced`));
      return;
    }
    pending.args.set(data, pending.received);
    pending.received += data.length;
    if (pending.received < size) return;
    ofLink.delete(attemptId);
    this.invoke(link, { ...pending.invoke, args: pending.args, argsSize: 0 });
  }

  cancel(link: CallLink, attemptId: number, reason: string): void {
    this.collecting.get(link)?.delete(attemptId);
    const call = this.calls.get(link)?.get(attemptId);
    // The gateway's deadline races this node's own timer for it: the handler sees the same reason either way.
    if (call) this.abort(call, reason === 'deadline' ? this.deadlinePassed(call) : new Cancelled(`cancelled by the gateway: ${reason}`));
  }

  credit(link: CallLink, attemptId: number, chunks: number): void {
    const call = this.calls.get(link)?.get(attemptId);
    if (call === undefined) return;
    call.credit += chunks;
    call.creditWaiter?.();
  }

  /** The link's stream is gone (or its lease ran out): fences every call that came on it. */
  linkLost(link: CallLink, reason: string): void {
    this.collecting.delete(link);
    const ofLink = this.calls.get(link);
    if (ofLink === undefined) return;
    for (const call of [...ofLink.values()]) this.fence(call, new NodeLost(`node ${this.nodeId} lost its gateway connection (${reason})`));
  }

  /** New invocations are refused as Overloaded from now on; calls already here go on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Refuses new calls, aborts every call (signals fire with Cancelled), stops worker threads. */
  close(reason: string): void {
    this.stopAccepting();
    for (const f of this.fns.values()) void f.pool?.close();
    for (const ofLink of [...this.calls.values()]) {
      for (const call of [...ofLink.values()]) this.abort(call, new Cancelled(`node ${this.nodeId} ${reason}`));
    }
  }

  private collectArgs(link: CallLink, invoke: Invoke): void {
    if (invoke.argsSize > link.maxPayloadBytes) {
      this.refuse(link, invoke.attemptId, new PayloadTooLarge(`arguments of ${invoke.argsSize} bytes exceed the gateway's limit of ${link.maxPayloadBytes} bytes`));
      return;
    }
    let ofLink = this.collecting.get(link);
    if (ofLink === undefined) this.collecting.set(link, (ofLink = new Map()));
    // invoke() sends a call here only when args_size is above the first part's length.
    const args = Buffer.allocUnsafe(invoke.argsSize);
    args.set(invoke.args, 0);
    ofLink.set(invoke.attemptId, { invoke, args, received: invoke.args.length });
  }

  // ---- one call ----------------------------------------------------------------------

  /** The scheduler gave the call a slot. */
  private begin(call: Call): void {
    call.job = undefined;
    if (!this.mayReply(call) || call.aborter.aborted) {
      this.finish(call, true);
      return;
    }
    const { invoke, fn } = call;
    if (invoke.deadlineUnixMs > 0 && this.clock.now() >= invoke.deadlineUnixMs) {
      // Its turn came too late (a long queue, or a process that was stopped): running it
      // now would only do work nobody waits for.
      this.sendError(call, new DeadlineExceeded(`${fn.name} passed its deadline on node ${this.nodeId} before it could start`));
      this.finish(call, true);
      return;
    }
    this.armDeadline(call);
    void this.execute(call);
  }

  private async execute(call: Call): Promise<void> {
    const { invoke, fn, aborter } = call;
    const t0 = performance.now();
    try {
      if (fn.pool) {
        const payload = SegmentedBytes.of(Buffer.from(await fn.pool.run(invoke.args, aborter.signal, profileOf(invoke))));
        if (aborter.aborted) return;
        const limit = call.link.maxPayloadBytes;
        if (payload.length > limit) throw new PayloadTooLarge(`${fn.name} produced ${payload.length} bytes; the gateway's limit is ${limit} bytes`);
        await this.sendResult(call, payload, performance.now() - t0);
        return;
      }
      let args: unknown[];
      try {
        args = invoke.args.length === 0 ? [] : decodeArgs(invoke.args);
      } catch (err) {
        throw new InvalidArgument(`${fn.name}: ${(err as Error).message}`);
      }
      const ctx = this.context(call);
      if (fn.kind === 'stream') {
        await this.runStream(call, ctx, args);
        if (!aborter.aborted) this.reply(call, { end: { attemptId: invoke.attemptId, execMs: performance.now() - t0 } });
      } else {
        const value = await runWithContext(ctx, () => fn.handler.apply(fn.thisArg, args));
        if (aborter.aborted) return;
        const payload = this.encodeResult(call, value, true);
        await this.sendResult(call, payload, performance.now() - t0);
      }
    } catch (err) {
      if (aborter.aborted) return; // the gateway already answered the caller
      this.sendError(call, asWireError(err), performance.now() - t0);
    } finally {
      this.finish(call, true);
    }
  }

  /**
   * Sends a result: at once when it is small, else in parts within the call's credit
   * (the gateway returns credit as its caller takes them), the last part in the result.
   */
  private async sendResult(call: Call, payload: SegmentedBytes, execMs: number): Promise<void> {
    const { invoke, aborter } = call;
    let offset = 0;
    // Parts fit the receiver's message limit: none is larger than its payload limit.
    const partBytes = partBytesWithin(call.link.maxPayloadBytes);
    while (payload.length - offset > partBytes) {
      await this.creditFor(call);
      if (aborter.aborted) return;
      call.credit--;
      const data = payload.slice(offset, offset + partBytes);
      offset += data.length;
      if (!this.reply(call, { resultPart: { attemptId: invoke.attemptId, data } })) await this.untilWritable(call);
    }
    this.reply(call, { result: { attemptId: invoke.attemptId, payload: offset === 0 ? payload.whole() : payload.slice(offset, payload.length), execMs } });
  }

  /**
   * Waits until the link's stream has room again, or the call is aborted. The abort
   * listener goes with the wait: a large result waits many times on one signal.
   */
  private async untilWritable(call: Call): Promise<void> {
    const signal = call.aborter.signal;
    if (signal.aborted) return;
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve()), { once: true }));
    await Promise.race([call.link.writable(), aborted]);
    signal.removeEventListener('abort', onAbort);
  }

  /** Waits until the call may send one more chunk or part (or is aborted). */
  private async creditFor(call: Call): Promise<void> {
    while (call.credit <= 0 && !call.aborter.aborted) {
      await new Promise<void>((resolve) => (call.creditWaiter = resolve));
      call.creditWaiter = undefined;
    }
  }

  private async runStream(call: Call, ctx: CallContext, args: unknown[]): Promise<void> {
    const { fn, invoke, aborter } = call;
    const produced = runWithContext(ctx, () => fn.handler.apply(fn.thisArg, args)) as AsyncIterable<unknown> | Iterable<unknown>;
    const iterator: AsyncIterator<unknown> | Iterator<unknown> =
      typeof (produced as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function'
        ? (produced as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : typeof (produced as Iterable<unknown>)?.[Symbol.iterator] === 'function'
          ? (produced as Iterable<unknown>)[Symbol.iterator]()
          : (() => {
              throw new TypeError(`${fn.name} is a stream function but returned ${typeof produced}`);
            })();
    try {
      for (;;) {
        await this.creditFor(call);
        if (aborter.aborted) return;
        const step = await runWithContext(ctx, () => iterator.next());
        if (step.done || aborter.aborted) return;
        const payload = this.encodeResult(call, step.value, false);
        call.credit--;
        if (!this.reply(call, { chunk: { attemptId: invoke.attemptId, payload } })) await this.untilWritable(call);
      }
    } finally {
      // Runs the generator's finally blocks when the caller went away or an error ended it.
      if (aborter.aborted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }

  private context(call: Call): CallContext {
    const { invoke, fn, aborter } = call;
    const wantProgress = invoke.wantProgress;
    return {
      callId: invoke.callId,
      attempt: invoke.attempt,
      functionName: fn.name,
      nodeId: this.nodeId,
      deadline: invoke.deadlineUnixMs > 0 ? invoke.deadlineUnixMs : undefined,
      get signal() {
        return aborter.signal;
      },
      caller: invoke.caller,
      metadata: invoke.metadata,
      progress: (fraction: number, message = '') => {
        if (!wantProgress || aborter.aborted) return;
        const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
        this.reply(call, { progress: { attemptId: invoke.attemptId, fraction: f, message: String(message) } });
      },
    };
  }

  /**
   * A result in segments, for sendResult: a large byte array in chunks the size of the
   * link's parts, so each part is one chunk. A stream chunk travels whole.
   */
  private encodeResult(call: Call, value: unknown, inParts: true): SegmentedBytes;
  private encodeResult(call: Call, value: unknown, inParts: false): Buffer;
  private encodeResult(call: Call, value: unknown, inParts: boolean): SegmentedBytes | Buffer {
    const { fn } = call;
    let payload: SegmentedBytes | Buffer;
    try {
      const profile = profileOf(call.invoke);
      payload = inParts ? encodeResultSegments(value, profile, partBytesWithin(call.link.maxPayloadBytes)) : encodeResult(value, profile);
    } catch (err) {
      throw Object.assign(new TypeError(`${fn.name} returned a value that cannot be encoded: ${(err as Error).message}`), { name: 'SerializationError' });
    }
    const limit = call.link.maxPayloadBytes;
    if (payload.length > limit) throw new PayloadTooLarge(`${fn.name} produced ${payload.length} bytes; the gateway's limit is ${limit} bytes`);
    return payload;
  }

  private armDeadline(call: Call): void {
    const deadline = call.invoke.deadlineUnixMs;
    if (call.cancelDeadline !== undefined || deadline <= 0) return;
    const left = Math.max(0, deadline - this.clock.now());
    // No reply here: the gateway ends the call at its deadline itself, slightly earlier.
    call.cancelDeadline = this.clock.after(left, () => this.abort(call, this.deadlinePassed(call)));
  }

  private deadlinePassed(call: Call): DeadlineExceeded {
    return new DeadlineExceeded(`${call.fn.name} passed its deadline on node ${this.nodeId}`);
  }

  // ---- replies -------------------------------------------------------------------------

  /**
   * Whether anything may still be sent for the call. Asking the link checks its lease,
   * which may fence this call and every other call on it.
   */
  private mayReply(call: Call): boolean {
    if (call.fenced) return false;
    if (!call.link.isLive()) this.fence(call, new NodeLost(`node ${this.nodeId} lost its gateway connection`));
    return !call.fenced;
  }

  /** Sends a frame for the call unless it is fenced; false when the link's buffer is full. */
  private reply(call: Call, frame: NodeFrame): boolean {
    if (!this.mayReply(call)) return true;
    return call.link.send(frame);
  }

  private sendError(call: Call, err: EasyRemoteError, execMs = 0): void {
    this.reply(call, { error: { attemptId: call.invoke.attemptId, error: { ...err.toDetail(), nodeId: this.nodeId }, execMs } });
  }

  /** Answers an invocation that never became a call. */
  private refuse(link: CallLink, attemptId: number, err: EasyRemoteError): void {
    if (!link.isLive()) return;
    link.send({ error: { attemptId, error: { ...err.toDetail(), nodeId: this.nodeId }, execMs: 0 } });
  }

  // ---- ending calls --------------------------------------------------------------------

  private fence(call: Call, reason: EasyRemoteError): void {
    call.fenced = true;
    this.abort(call, reason);
  }

  private abort(call: Call, reason: EasyRemoteError): void {
    if (call.job && this.scheduler.withdraw(call.job)) {
      // Never started: nothing will reply, so it ends here.
      call.job = undefined;
      this.finish(call, false);
    }
    call.aborter.abort(reason);
    call.creditWaiter?.();
  }

  private untrack(call: Call): boolean {
    const ofLink = this.calls.get(call.link);
    if (ofLink?.get(call.invoke.attemptId) !== call) return false;
    ofLink.delete(call.invoke.attemptId);
    if (ofLink.size === 0) this.calls.delete(call.link);
    this.count--;
    return true;
  }

  private finish(call: Call, heldSlot: boolean): void {
    if (call.finished) return;
    call.finished = true;
    call.cancelDeadline?.();
    this.untrack(call);
    // Releasing the slot may start the next waiting call (of any link).
    if (heldSlot) this.scheduler.release(call.fn.owner);
    if (this.count === 0) this.onIdle();
  }
}

/** What a handler threw, as it travels: catalogue errors keep their code. */
function asWireError(err: unknown): EasyRemoteError {
  if (err instanceof EasyRemoteError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new RemoteError(e.message, { remoteName: e.name, remoteStack: e.stack ?? '' });
}

/** How results are encoded for the caller: what it asked for (a plain client gets the portable profile). */
function profileOf(invoke: Invoke): ResultProfile {
  return invoke.portableResult ? 'portable' : 'full';
}
