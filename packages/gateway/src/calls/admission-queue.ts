// Calls that cannot be placed yet wait here, per function, with their deadline running:
// when every provider is at capacity (a burst), or while a function has no usable
// provider for a moment (a node restarting). A plain data structure: the dispatcher
// decides when a waiting call may try again. Bounded by a count per function and by the
// bytes of queued arguments across all functions, so waiting costs bounded memory.
import type { ExceededLimit } from '@easyremote/protocol';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { PendingCall } from './pending-call.js';

/** Calls of one function that may wait at the gateway. */
export const DEFAULT_GATEWAY_QUEUE_SIZE = 10_000;
/** Bytes of arguments all waiting calls may hold together. */
export const DEFAULT_GATEWAY_QUEUE_BYTES = 256 * 1024 * 1024;

export class AdmissionQueue {
  private readonly queues = new Map<string, PendingCall[]>();
  private bytes = 0;

  constructor(
    private readonly limit: number = DEFAULT_GATEWAY_QUEUE_SIZE,
    private readonly maxBytes: number = DEFAULT_GATEWAY_QUEUE_BYTES,
  ) {}

  /** Adds a call to its function's queue; the limit it would exceed when it cannot. */
  enqueue(call: PendingCall): ExceededLimit | undefined {
    const q = this.queues.get(call.entry.name);
    const waiting = q?.length ?? 0;
    if (waiting >= this.limit) return { name: 'gateway_queue_size', limit: this.limit, actual: waiting + 1 };
    if (this.bytes + call.args.length > this.maxBytes) return { name: 'gateway_queue_bytes', limit: this.maxBytes, actual: this.bytes + call.args.length };
    if (q === undefined) this.queues.set(call.entry.name, [call]);
    else q.push(call);
    this.bytes += call.args.length;
    call.queued = true;
    return undefined;
  }

  /** A call that finished while waiting (deadline, cancel). */
  remove(call: PendingCall): void {
    if (!call.queued) return;
    this.release(call);
    const q = this.queues.get(call.entry.name);
    if (q === undefined) return;
    const i = q.indexOf(call);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.queues.delete(call.entry.name);
  }

  /** The oldest waiting call of this function that is still open, taken off the queue. */
  next(entry: FunctionEntry): PendingCall | undefined {
    const q = this.queues.get(entry.name);
    while (q !== undefined && q.length > 0) {
      const call = q.shift()!;
      this.release(call);
      if (q.length === 0) this.queues.delete(entry.name);
      if (!call.done) return call;
    }
    return undefined;
  }

  /** Functions that have calls waiting. */
  waitingFunctions(): IterableIterator<string> {
    return this.queues.keys();
  }

  /** Every waiting call, taken off the queues (shutdown). */
  takeAll(): PendingCall[] {
    const all = [...this.queues.values()].flat();
    this.queues.clear();
    for (const call of all) this.release(call);
    return all;
  }

  size(functionName: string): number {
    return this.queues.get(functionName)?.length ?? 0;
  }

  /** Bytes of arguments held by waiting calls. */
  get queuedBytes(): number {
    return this.bytes;
  }

  get limitPerFunction(): number {
    return this.limit;
  }

  private release(call: PendingCall): void {
    call.queued = false;
    this.bytes -= call.args.length;
  }
}
