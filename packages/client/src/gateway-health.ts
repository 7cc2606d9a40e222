// Whether a client sends new calls to one of its gateways. One state machine, no timers
// of its own: time is passed in (`now`, ms on any monotonic clock) and randomness is
// injected, so it is tested in fake time.
//
//   up ──failed──▶ down (for a delay) ──delay over, next pick──▶ trial (one call)
//    ▲                                                            │
//    └──────────── succeeded (a reply, a session's headers, the channel READY) ◀─┘
//
// A gateway whose connection failed, whose session broke, or that said it is stopping is
// down: no new call goes there until its delay is over; then exactly one call may try it
// (a trial), and others keep going elsewhere until that call, or anything else, shows it
// answers again. Delays grow from INITIAL_RETRY_MS, doubling per failure in a row, to
// MAX_RETRY_MS, half of each random; bounded so that a restarted gateway takes calls
// again within about a second of being back.

/** Delay before a gateway that just failed is tried again, ms (the first failure in a row). */
export const INITIAL_RETRY_MS = 100;
/** The longest a failed gateway waits to be tried again, ms. */
export const MAX_RETRY_MS = 1_000;
export const RETRY_MULTIPLIER = 2;

export type GatewayState = 'up' | 'down' | 'trial';

export class GatewayHealth {
  private stateValue: GatewayState = 'up';
  private failuresInRow = 0;
  private retryAtMs = 0;

  constructor(private readonly random: () => number = Math.random) {}

  get state(): GatewayState {
    return this.stateValue;
  }

  /** When a down gateway may be tried again (meaningless while up). */
  get retryAt(): number {
    return this.retryAtMs;
  }

  /** Whether a new call may go there now; a down gateway past its delay becomes the trial for this call. */
  acquire(now: number): boolean {
    if (this.stateValue === 'up') return true;
    if (this.stateValue === 'trial' || now < this.retryAtMs) return false;
    this.stateValue = 'trial';
    return true;
  }

  /** The gateway answered (a reply, a session's headers, its channel connected): calls go there again. */
  succeeded(): void {
    this.stateValue = 'up';
    this.failuresInRow = 0;
  }

  /** A trial call ended without showing either way (its caller cancelled it): the next call may try. */
  abandoned(now: number): void {
    if (this.stateValue !== 'trial') return;
    this.stateValue = 'down';
    this.retryAtMs = now;
  }

  /** Its connection failed or broke, or a trial call found it still gone: down for the next delay. */
  failed(now: number): void {
    const ceiling = Math.min(MAX_RETRY_MS, INITIAL_RETRY_MS * RETRY_MULTIPLIER ** this.failuresInRow);
    this.failuresInRow++;
    this.stateValue = 'down';
    this.retryAtMs = now + ceiling / 2 + (clamp01(this.random()) * ceiling) / 2;
  }
}

function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0;
}
