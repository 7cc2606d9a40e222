// Calls that found every provider full wait here, per function and bounded, with their
// deadline still running; beyond the bound they are refused as Overloaded. A plain data
// structure: the dispatcher decides when a waiting call may try again.
import type { FunctionEntry } from '../registry/function-entry.js';
import type { PendingCall } from './pending-call.js';

/** Calls of one function that may wait at the gateway for a free provider. */
export const DEFAULT_GATEWAY_QUEUE_SIZE = 64;

export class AdmissionQueue {
  private readonly queues = new Map<string, PendingCall[]>();

  constructor(private readonly limit: number = DEFAULT_GATEWAY_QUEUE_SIZE) {}

  /** Adds a call to its function's queue; false when the queue is full (or disabled). */
  enqueue(call: PendingCall): boolean {
    if (this.limit <= 0) return false;
    let q = this.queues.get(call.entry.name);
    if (q === undefined) this.queues.set(call.entry.name, (q = []));
    if (q.length >= this.limit) return false;
    q.push(call);
    call.queued = true;
    return true;
  }

  /** A call that finished while waiting (deadline, cancel). */
  remove(call: PendingCall): void {
    if (!call.queued) return;
    call.queued = false;
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
      call.queued = false;
      if (q.length === 0) this.queues.delete(entry.name);
      if (!call.done) return call;
    }
    return undefined;
  }

  /** Every waiting call, taken off the queues (shutdown). */
  takeAll(): PendingCall[] {
    const all = [...this.queues.values()].flat();
    this.queues.clear();
    for (const call of all) call.queued = false;
    return all;
  }

  size(functionName: string): number {
    return this.queues.get(functionName)?.length ?? 0;
  }

  get limitPerFunction(): number {
    return this.limit;
  }
}
