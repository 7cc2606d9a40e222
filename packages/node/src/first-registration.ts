// What `node.start()` waits for: the first registration a gateway accepts. It gives up
// (and the node stops) on a refusal no retry can fix, on a node id still taken after a
// stale session of this node's would have expired, and when no gateway accepted the node
// within the connect timeout. Pure: time comes from the injected clock.
import { DEFAULT_LEASE_MS, EasyRemoteError, GatewayUnavailable, RegistrationRefused } from '@easyremote/protocol';
import type { RunnerClock } from './call-runner.js';

/** `start()` gives up when no gateway accepted the node within this long (0 = never). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/**
 * How long a taken node id is retried when the gateway's refusal says nothing of when the
 * holder's lease runs out (a gateway that sets no retry_after_ms).
 */
export const DUPLICATE_ID_FALLBACK_MS = 2 * DEFAULT_LEASE_MS;

export interface FirstRegistrationOptions {
  address: string;
  nodeId: string;
  /** 0 = no limit. */
  connectTimeoutMs: number;
  clock: RunnerClock;
  /** Told once when start gives up on its own (timeout); the node then stops. */
  gaveUp: (err: EasyRemoteError) => void;
}

export class FirstRegistration {
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: Error) => void;
  private settled = false;
  private failures = 0;
  private lastFailure = '';
  /** The first refusal for a taken id, and until when a stale session of ours would explain it. */
  private duplicate: { err: EasyRemoteError; since: number; until: number } | undefined;
  private readonly cancelTimer: (() => void) | undefined;

  constructor(private readonly o: FirstRegistrationOptions) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (o.connectTimeoutMs > 0) this.cancelTimer = o.clock.after(o.connectTimeoutMs, () => this.timedOut());
  }

  get done(): boolean {
    return this.settled;
  }

  registered(): void {
    this.settle();
    this.resolve();
  }

  /** A stream that ended before a registration was accepted on it. */
  failed(reason: string): void {
    this.failures++;
    this.lastFailure = reason;
  }

  /**
   * A refusal; `retrying` is the link's view (it reconnects). Returns the error start()
   * rejected with when this refusal ends the wait, else undefined.
   */
  refused(err: EasyRemoteError, retrying: boolean): EasyRemoteError | undefined {
    if (this.settled) return undefined;
    if (!retrying) return this.fail(err);
    if (err.code !== 'REGISTRATION_REFUSED') return undefined;
    const now = this.o.clock.now();
    if (this.duplicate === undefined) {
      this.duplicate = { err, since: now, until: now + (err.retryAfterMs || DUPLICATE_ID_FALLBACK_MS) };
      return undefined;
    }
    if (now < this.duplicate.until) return undefined;
    const waited = Math.round(now - this.duplicate.since);
    return this.fail(
      new RegistrationRefused(`${err.message}, still ${waited} ms after the first refusal, longer than a stale session of this node would live: another node is using the id ${this.o.nodeId}`, {
        cause: err,
      }),
    );
  }

  /** The node stopped before it registered. */
  cancel(reason: string): void {
    if (this.settled) return;
    this.fail(new Error(`node ${this.o.nodeId} ${reason} before it registered`));
  }

  private timedOut(): void {
    if (this.settled) return;
    const ms = this.o.connectTimeoutMs;
    const err =
      this.duplicate !== undefined
        ? new RegistrationRefused(`${this.duplicate.err.message}; connectTimeoutMs (${ms} ms) ran out waiting for the id ${this.o.nodeId} to be released`)
        : new GatewayUnavailable(
            `gateway ${this.o.address} unavailable: node ${this.o.nodeId} was not registered within connectTimeoutMs (${ms} ms)` +
              (this.failures > 0 ? `; ${this.failures} attempt(s) failed, the last with: ${this.lastFailure}` : ''),
          );
    this.fail(err);
    this.o.gaveUp(err);
  }

  private fail<E extends Error>(err: E): E {
    this.settle();
    this.reject(err);
    return err;
  }

  private settle(): void {
    this.settled = true;
    this.cancelTimer?.();
  }
}
