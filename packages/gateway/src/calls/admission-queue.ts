// Calls that found every provider full wait here, per function and bounded, with their
// deadline still running; beyond the bound they are refused as Overloaded.
import type { FunctionEntry } from '../registry/function-entry.js';
import type { PendingCall } from './pending-call.js';

/** Calls of one function that may wait at the gateway for a free provider. */
export const DEFAULT_GATEWAY_QUEUE_SIZE = 64;

export class AdmissionQueue {
  private readonly queues = new Map<string, PendingCall[]>();

  constructor(
    private readonly limit: number,
    /** Whether any provider of the function can take a call now. */
    private readonly hasRoom: (entry: FunctionEntry) => boolean,
    private readonly redispatch: (call: PendingCall) => void,
  ) {}

  enqueue(call: PendingCall): boolean {
    if (this.limit <= 0) return false;
    let q = this.queues.get(call.entry.name);
    if (q === undefined) this.queues.set(call.entry.name, (q = []));
    if (q.length >= this.limit) return false;
    q.push(call);
    return true;
  }

  /** A call that finished while waiting (deadline, cancel). */
  remove(call: PendingCall): void {
    const q = this.queues.get(call.entry.name);
    if (q === undefined) return;
    const i = q.indexOf(call);
    if (i >= 0) q.splice(i, 1);
  }

  /** Capacity may have freed up for this function: place waiting calls, oldest first. */
  pump(entry: FunctionEntry): void {
    const q = this.queues.get(entry.name);
    while (q !== undefined && q.length > 0 && this.hasRoom(entry)) {
      const call = q.shift()!;
      if (!call.done) this.redispatch(call);
    }
  }

  size(functionName: string): number {
    return this.queues.get(functionName)?.length ?? 0;
  }

  get limitPerFunction(): number {
    return this.limit;
  }
}
