// One call as the client makes it over its gateways: sent to one, and sent again to
// another when that is known to be safe.
//
// - Not sent, or refused unrun (GATEWAY_UNAVAILABLE: no connection, or the gateway is
//   stopping; IDEMPOTENCY_MISMATCH: it assumed an idempotent function that is not):
//   sent again at once, whatever the function.
// - Sent, and the gateway lost before the answer (GATEWAY_LOST, or CANCELLED because the
//   gateway stopped with it in flight): sent again only when it went out assuming its
//   function idempotent (a gateway said so, and would have refused it otherwise) and
//   nothing of it reached the caller yet (no chunk of a stream); otherwise the caller gets
//   the error, which says the outcome is unknown.
// - Anything else is the gateway's answer and goes to the caller as it is.
//
// At most one attempt per gateway plus one (so two through a single address, e.g. nginx),
// never past the call's deadline, never after the caller cancelled it.
import type { EasyRemoteError } from '@easyremote/protocol';
import type { GatewayConnection } from './gateway-connection.js';
import type { IdempotencyKnowledge } from './idempotency.js';
import type { CallHandle, CallListener, SessionRequest } from './session.js';

/** What a call needs from the set of gateways it is made over. */
export interface CallRouting {
  readonly knowledge: IdempotencyKnowledge;
  /** How many gateways there are. */
  readonly size: number;
  /** The gateway for the next attempt, preferring those this call has not tried. */
  pick(tried: readonly GatewayConnection[]): GatewayConnection;
  /** Monotonic ms (the gateways' health runs on it). */
  now(): number;
}

export type CallRequest = Omit<SessionRequest, 'assumeIdempotent'>;

const NONE_TRIED: readonly GatewayConnection[] = [];

export class FailoverCall implements CallHandle {
  /** The gateways earlier attempts went to (made on the first resend: most calls have one attempt). */
  private tried: GatewayConnection[] | undefined;
  private attempts = 0;
  private member: GatewayConnection | undefined;
  private handle: CallHandle | undefined;
  /** The current attempt went out assuming its function idempotent. */
  private assumed = false;
  /** A chunk (or the result) reached the caller. */
  private delivered = false;
  private cancelled = false;
  /** The current attempt's gateway still counts it as outstanding. */
  private counted = false;

  constructor(
    private readonly routing: CallRouting,
    private readonly request: CallRequest,
    private readonly listener: CallListener,
  ) {}

  /** Sends the first attempt (once the gateways are known). */
  begin(): void {
    if (!this.cancelled) this.attempt();
  }

  credit(chunks: number): void {
    this.handle?.credit(chunks);
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.handle?.cancel();
    const member = this.member;
    if (member !== undefined) {
      this.release(member);
      member.health.abandoned(this.routing.now());
    }
  }

  private attempt(): void {
    const previous = this.member;
    if (previous !== undefined) (this.tried ??= []).push(previous);
    const member = this.routing.pick(this.tried ?? NONE_TRIED);
    const n = ++this.attempts;
    this.member = member;
    member.outstanding++;
    this.counted = true;
    this.assumed = this.routing.knowledge.assume(this.request.function);
    const stream = this.request.stream;
    // Replies of an attempt that is no longer current are ignored (a transport answers once per attempt anyway).
    const current = () => this.attempts === n && !this.cancelled;
    const handle = member.start(
      { ...this.request, assumeIdempotent: this.assumed },
      {
        payload: (bytes) => {
          if (!current()) return;
          this.delivered = true;
          member.health.succeeded();
          if (!stream) this.release(member);
          this.listener.payload(bytes);
        },
        end: () => {
          if (!current()) return;
          this.release(member);
          this.listener.end();
        },
        error: (err) => {
          if (current()) this.failed(member, err);
        },
      },
    );
    if (this.attempts === n) this.handle = handle;
  }

  private release(member: GatewayConnection): void {
    if (!this.counted || member !== this.member) return;
    this.counted = false;
    member.outstanding--;
  }

  private failed(member: GatewayConnection, err: EasyRemoteError): void {
    this.release(member);
    if (this.request.signal?.aborted) {
      this.listener.error(err);
      return;
    }
    if (this.mayResend(member, err) && this.attempts <= this.routing.size && Date.now() < this.request.deadline) {
      this.attempt();
      return;
    }
    this.listener.error(err);
  }

  /** What the failure says about the gateway (its health), and whether the call may go again. */
  private mayResend(member: GatewayConnection, err: EasyRemoteError): boolean {
    switch (err.code) {
      case 'GATEWAY_UNAVAILABLE':
        member.markDown();
        return true;
      case 'IDEMPOTENCY_MISMATCH':
        this.routing.knowledge.learn(this.request.function, false);
        member.health.succeeded();
        return true;
      case 'GATEWAY_LOST':
      case 'CANCELLED':
        // CANCELLED here came from the gateway (the caller's own cancel never reaches this): it stopped with the call in flight.
        member.markDown();
        return this.assumed && !this.delivered;
      default:
        member.health.succeeded();
        return false;
    }
  }
}
