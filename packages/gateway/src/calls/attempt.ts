// One try of a call on one node, and what its end teaches whoever routed it.
import type { TimerHandle } from '../clock.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, SelectContext, Strategy } from '../strategies/strategy.js';
import type { PendingCall } from './pending-call.js';

/** One try of a call on one node. Replies name its id; a reply for an id no longer known is dropped. */
export class Attempt {
  /** Chunks the consumer has taken whose credit is not yet returned to the node. */
  owedCredit = 0;
  /** The consumer is slow: credit waits for its drain. */
  blocked = false;
  /** healthCheck.timeout timer, when the function sets one. */
  timer: TimerHandle | undefined;

  constructor(
    readonly id: number,
    readonly call: PendingCall,
    readonly provider: Provider,
    readonly dispatchedAt: number,
    /** The strategy instance that picked the provider: the outcome goes back to it. */
    readonly strategy: Strategy,
    readonly context: SelectContext,
    /** The candidate's figures when picked, kept only for strategies that learn. */
    readonly snapshot: Candidate | undefined,
  ) {}
}

export interface AttemptOutcome {
  readonly attempt: Attempt;
  readonly ok: boolean;
  /** Whether the outcome says something about the node's health. */
  readonly countsForHealth: boolean;
  readonly latencyMs: number;
  readonly execMs: number;
}

/** Told about every attempt (outlier detection). */
export interface AttemptListener {
  attemptStarted(attempt: Attempt): void;
  attemptFinished(outcome: AttemptOutcome): void;
}
