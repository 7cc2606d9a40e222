// Calls the gateway has taken in and not yet finished, counted so that a stopping gateway
// can let them finish: a call is open from the moment intake admits it (its checks
// passed) until it is recorded as finished, whatever ended it (a result, an error, a
// cancel, a cache hit). Calls refused at intake are never open.
import type { Clock, TimerHandle } from '../clock.js';

interface GraceWait {
  readonly promise: Promise<number>;
  readonly resolve: (open: number) => void;
  /** clock.now when the grace ends. */
  until: number;
  timer: TimerHandle | undefined;
}

export class OpenCalls {
  private open = 0;
  private wait: GraceWait | undefined;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.open;
  }

  opened(): void {
    this.open++;
  }

  closed(): void {
    if (this.open > 0) this.open--;
    if (this.open === 0) this.endWait();
  }

  /**
   * Resolves once no call is open, or when `graceMs` has passed, whichever comes first,
   * with the number of calls still open then (0 when they all finished). Asked again
   * while waiting, the grace can only get shorter: the earlier end wins, and 0 ends the
   * wait at once.
   */
  settled(graceMs: number): Promise<number> {
    const until = this.clock.now() + Math.max(0, graceMs);
    if (this.wait === undefined) {
      if (this.open === 0 || !(graceMs > 0)) return Promise.resolve(this.open);
      let resolve!: (open: number) => void;
      const promise = new Promise<number>((r) => (resolve = r));
      this.wait = { promise, resolve, until: Infinity, timer: undefined };
    }
    const wait = this.wait;
    if (until < wait.until) {
      wait.until = until;
      this.clock.clearTimeout(wait.timer);
      if (!(graceMs > 0)) this.endWait();
      else wait.timer = this.clock.setTimeout(() => this.endWait(), graceMs);
    }
    return wait.promise;
  }

  private endWait(): void {
    const wait = this.wait;
    if (wait === undefined) return;
    this.wait = undefined;
    this.clock.clearTimeout(wait.timer);
    wait.resolve(this.open);
  }
}
