// What the end of an attempt teaches whoever routed it.
import type { Attempt } from './pending-call.js';

export type { Attempt };

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
