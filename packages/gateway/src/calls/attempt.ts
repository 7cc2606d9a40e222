import type { Provider } from '../registry/provider.js';
import type { Candidate, SelectContext } from '../strategies/strategy.js';
import type { PendingCall } from './pending-call.js';

/** One try of a call on one node. Replies name its id; a reply for an id no longer known is dropped. */
export class Attempt {
  /** Chunks the consumer has taken whose credit is not yet returned to the node. */
  owedCredit = 0;
  /** The consumer is slow: credit waits for its drain. */
  blocked = false;
  /** healthCheck.timeout timer, when the function sets one. */
  timer: NodeJS.Timeout | undefined;
  /** The candidate's figures when it was picked, kept only for strategies that learn. */
  snapshot: Candidate | undefined;

  constructor(
    readonly id: number,
    readonly call: PendingCall,
    readonly provider: Provider,
    readonly dispatchedAt: number,
    readonly strategy: string,
    readonly context: SelectContext | undefined,
  ) {}
}
