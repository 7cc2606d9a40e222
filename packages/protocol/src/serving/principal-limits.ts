// Each principal's own limits: calls in flight at once, and calls started per second
// (a token bucket holding one second's worth, so short bursts pass). A tenant over its
// limits is refused with RATE_LIMITED and a retry-after; the others are unaffected.
import { RateLimited, type EasyRemoteError } from '../errors.js';
import type { Principal } from './principals.js';

/** Retry hint when a principal is at its limit of calls in flight. */
export const CONCURRENCY_RETRY_AFTER_MS = 100;

interface Usage {
  inFlight: number;
  /** Tokens left in the rate bucket, and when it was last refilled (clock.now ms). */
  tokens: number;
  refilledAt: number;
}

export class PrincipalLimits {
  private readonly usage = new Map<Principal, Usage>();

  constructor(private readonly clock: { now(): number }) {}

  /** Takes a slot for one call, or says which limit refuses it. */
  acquire(principal: Principal): EasyRemoteError | undefined {
    if (!principal.isLimited) return undefined;
    const { maxConcurrent, callsPerSecond } = principal.config;
    const now = this.clock.now();
    let u = this.usage.get(principal);
    if (u === undefined) this.usage.set(principal, (u = { inFlight: 0, tokens: callsPerSecond ?? 0, refilledAt: now }));
    if (maxConcurrent !== undefined && u.inFlight >= maxConcurrent) {
      return new RateLimited(`${principal.name} has ${u.inFlight} calls in flight; its limit is ${maxConcurrent}`, {
        retryAfterMs: CONCURRENCY_RETRY_AFTER_MS,
        limit: { name: 'principal_max_concurrent', limit: maxConcurrent, actual: u.inFlight + 1 },
      });
    }
    if (callsPerSecond !== undefined) {
      u.tokens = Math.min(callsPerSecond, u.tokens + ((now - u.refilledAt) / 1000) * callsPerSecond);
      u.refilledAt = now;
      if (u.tokens < 1) {
        return new RateLimited(`${principal.name} is over its limit of ${callsPerSecond} calls per second`, {
          retryAfterMs: Math.ceil(((1 - u.tokens) / callsPerSecond) * 1000),
          limit: { name: 'principal_calls_per_second', limit: callsPerSecond, actual: callsPerSecond + 1 },
        });
      }
      u.tokens -= 1;
    }
    u.inFlight++;
    return undefined;
  }

  /** A call that took a slot has finished. */
  release(principal: Principal): void {
    const u = this.usage.get(principal);
    if (u !== undefined && u.inFlight > 0) u.inFlight--;
  }

  /** Calls in flight per limited principal (for operators). */
  inFlight(principal: Principal): number {
    return this.usage.get(principal)?.inFlight ?? 0;
  }
}
