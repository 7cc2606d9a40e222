// Admission on the node: per-function maxConcurrent/queueSize and an optional node-wide
// limit. When a slot frees, the waiting call with the highest function priority starts
// (FIFO within a priority), so `priority` decides who runs first on a busy node.

export interface SlotOwner {
  readonly name: string;
  readonly maxConcurrent: number; // Infinity = unlimited
  readonly queueSize: number;
  readonly priority: number;
  running: number;
  readonly queue: Job[];
}

export interface Job {
  readonly owner: SlotOwner;
  readonly start: () => void;
  /** Sequence number: FIFO order among equal priorities. */
  readonly seq: number;
}

export type Admission = 'started' | 'queued' | 'refused';

export class Scheduler {
  private running = 0;
  private seq = 0;
  private readonly owners = new Set<SlotOwner>();

  constructor(private readonly nodeMaxConcurrent = Infinity) {}

  owner(name: string, maxConcurrent: number | undefined, queueSize: number | undefined, priority = 0): SlotOwner {
    const owner: SlotOwner = {
      name,
      maxConcurrent: maxConcurrent ?? Infinity,
      queueSize: maxConcurrent === undefined ? Infinity : (queueSize ?? 0),
      priority,
      running: 0,
      queue: [],
    };
    this.owners.add(owner);
    return owner;
  }

  admit(owner: SlotOwner, start: () => void): { admission: Admission; job?: Job } {
    const job: Job = { owner, start, seq: this.seq++ };
    if (this.canRun(owner) && owner.queue.length === 0) {
      this.begin(job);
      return { admission: 'started', job };
    }
    if (owner.queue.length >= owner.queueSize) return { admission: 'refused' };
    owner.queue.push(job);
    return { admission: 'queued', job };
  }

  /** A queued job that will not run (cancelled while waiting). */
  withdraw(job: Job): boolean {
    const i = job.owner.queue.indexOf(job);
    if (i < 0) return false;
    job.owner.queue.splice(i, 1);
    return true;
  }

  release(owner: SlotOwner): void {
    owner.running--;
    this.running--;
    this.pump();
  }

  get totalRunning(): number {
    return this.running;
  }

  private canRun(owner: SlotOwner): boolean {
    return owner.running < owner.maxConcurrent && this.running < this.nodeMaxConcurrent;
  }

  private begin(job: Job): void {
    job.owner.running++;
    this.running++;
    job.start();
  }

  private pump(): void {
    while (this.running < this.nodeMaxConcurrent) {
      let best: SlotOwner | undefined;
      for (const o of this.owners) {
        if (o.queue.length === 0 || o.running >= o.maxConcurrent) continue;
        if (best === undefined || o.priority > best.priority || (o.priority === best.priority && o.queue[0]!.seq < best.queue[0]!.seq)) best = o;
      }
      if (best === undefined) return;
      this.begin(best.queue.shift()!);
    }
  }
}
