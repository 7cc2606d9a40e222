import type { CallOptions } from '@easyremote/protocol';
import type { TimerHandle } from '../clock.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, SelectContext, Strategy } from '../strategies/strategy.js';
import { ANONYMOUS, type Principal } from '../auth/principals.js';
import type { ArgsRelay } from './args-relay.js';
import type { CallSink } from './call-sink.js';

// A client call and its attempts: one call may be tried on several nodes, one at a time.

/** A client call from arrival to its final reply, across however many attempts it takes. */
export class PendingCall {
  attempt: Attempt | undefined;
  attempts = 0;
  /** Nodes already tried (set on the first retry only). */
  tried: Set<string> | undefined;
  /** Chunks or result parts delivered to the caller. */
  chunks = 0;
  responseBytes = 0;
  done = false;
  timer: TimerHandle | undefined;
  strategy = '';
  /** First dispatch time (clock.now ms); queue wait = dispatchedAt - arrivedAt. */
  dispatchedAt = 0;
  execMs = 0;
  /** Node of the last attempt ('' if none ran). */
  nodeId = '';
  /** Waiting in the gateway's admission queue. */
  queued = false;
  /** While it waits for a provider (not for room): when it gives up waiting. */
  gapTimer: TimerHandle | undefined;
  /** Set when the arguments arrive in parts (a session call): they are relayed, not held. */
  argsRelay: ArgsRelay | undefined;
  /** Who called (the authenticated principal). */
  caller: Principal = ANONYMOUS;

  constructor(
    readonly id: number,
    readonly entry: FunctionEntry,
    readonly args: Buffer,
    readonly options: CallOptions | undefined,
    readonly metadata: Record<string, string>,
    /** Absolute epoch-ms deadline; 0 = none. */
    readonly deadline: number,
    readonly streaming: boolean,
    readonly wantProgress: boolean,
    readonly sink: CallSink,
    /** clock.now ms when the call reached the gateway. */
    readonly arrivedAt: number,
    /** Who called: the peer address (or the authenticated caller). */
    readonly client: string,
  ) {}

  /** Size of the arguments, all parts counted. */
  get requestBytes(): number {
    return this.argsRelay?.total ?? this.args.length;
  }
}

/** One try of a call on one node. Replies name its id; a reply for an id no longer known is dropped. */
export class Attempt {
  /** Chunks the node may still send: its initial credit plus grants, less chunks received. */
  credit: number;
  /** Chunks the consumer has taken whose credit is not yet returned to the node. */
  owedCredit = 0;
  /**
   * Owed credit is returned once this much has gathered: half the initial credit, so the
   * node never runs dry waiting for a batch larger than what it was given.
   */
  readonly creditBatch: number;
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
    initialCredit: number,
  ) {
    this.credit = initialCredit;
    this.creditBatch = Math.max(1, initialCredit >> 1);
  }
}
