// What this client has learned about its functions from its gateways: whether each is
// idempotent. A call is sent "assuming idempotent" only when a gateway said so; a gateway
// that finds the assumption wrong refuses the call unrun (IDEMPOTENCY_MISMATCH) and says
// so, so a call is resent after a gateway is lost only when every gateway that saw it
// agreed it may be. See proto/session.md, "Idempotency and failover".

/** Functions remembered at most; past it the table starts again (and relearns from the next replies). */
export const MAX_KNOWN_FUNCTIONS = 4096;

export class IdempotencyKnowledge {
  private readonly known = new Map<string, boolean>();

  /** Whether calls of `fn` may be sent assuming it idempotent: only after a gateway said it is. */
  assume(fn: string): boolean {
    return this.known.get(fn) === true;
  }

  learn(fn: string, idempotent: boolean): void {
    if (this.known.get(fn) === idempotent) return;
    if (this.known.size >= MAX_KNOWN_FUNCTIONS && !this.known.has(fn)) this.known.clear();
    this.known.set(fn, idempotent);
  }
}
