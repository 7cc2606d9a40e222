// When the gateway ends a call: the earlier of the caller's deadline (less a margin, so
// the server closes the stream before the client resets it) and the function's own limit.

/**
 * For callers that name no deadline grace (plain gRPC clients), the gateway ends a call
 * this long before their deadline: 5% of the time left, 5 to 50 ms, and never more than
 * half of it. Ending it server-side matters under overload: a burst of client resets (a
 * thousand calls timing out together) trips HTTP/2 rapid-reset protection, which closes
 * the connection and every call on it.
 */
export const DEADLINE_MARGIN = { share: 0.05, minMs: 5, maxMs: 50 } as const;
/** The most deadline grace a caller may claim, ms. */
export const MAX_DEADLINE_GRACE_MS = 5_000;

export interface DeadlineInputs {
  /** Unix epoch ms now. */
  readonly nowMs: number;
  /** The caller's gRPC deadline (epoch ms), Infinity when it set none. */
  readonly callerDeadlineMs: number;
  /**
   * The caller's `x-easyremote-deadline-grace-ms` header: its gRPC deadline is this much
   * later than the real one, which the gateway then enforces itself. Capped at
   * MAX_DEADLINE_GRACE_MS; anything that is not a non-negative number counts as none.
   */
  readonly graceHeader: string | undefined;
  /** No margin at all: the caller's transport cannot reset the call on its own. */
  readonly exact?: boolean;
  /** The function's own time limit (ms; 0 = none). */
  readonly functionTimeoutMs: number;
  /** The gateway's limit for functions that set none (ms). */
  readonly defaultTimeoutMs: number;
}

/** The absolute deadline (epoch ms) the gateway enforces and passes to the node. */
export function callDeadline(i: DeadlineInputs): number {
  const own = i.nowMs + (i.functionTimeoutMs > 0 ? i.functionTimeoutMs : i.defaultTimeoutMs);
  if (!Number.isFinite(i.callerDeadlineMs)) return own;
  const left = i.callerDeadlineMs - i.nowMs;
  const claimed = i.graceHeader === undefined ? NaN : Number(i.graceHeader);
  const grace = Number.isFinite(claimed) && claimed > 0 ? Math.min(MAX_DEADLINE_GRACE_MS, claimed) : 0;
  const margin = i.exact ? 0 : grace > 0 ? grace : Math.min(DEADLINE_MARGIN.maxMs, Math.max(DEADLINE_MARGIN.minMs, DEADLINE_MARGIN.share * left), left / 2);
  return Math.min(i.callerDeadlineMs - margin, own);
}
