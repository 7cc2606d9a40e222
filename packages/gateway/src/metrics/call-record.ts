import type { NodeEventKind } from '@easyremote/protocol';
export type { NodeEventKind };
/** One finished call, as the gateway records it (one SQLite row). */
export interface CallRecord {
  /** Unix epoch ms when the call finished. */
  readonly finishedAt: number;
  readonly functionName: string;
  /** Node that served it; '' when none did (not found, no node, cache hit). */
  readonly nodeId: string;
  /** Strategy that picked the node ('' when none ran). */
  readonly strategy: string;
  /** Caller identity: peer address or authenticated client id. */
  readonly client: string;
  /** Time from arrival at the gateway until dispatch to a node (ms). */
  readonly queueWaitMs: number;
  /** Execution time the node reported (ms); 0 when it never ran. */
  readonly execMs: number;
  /** Arrival at the gateway to the final reply (ms). */
  readonly totalMs: number;
  readonly success: boolean;
  /** Catalogue error code ('' on success). */
  readonly errorCode: string;
  readonly cached: boolean;
  readonly requestBytes: number;
  /** Result bytes (sum of chunks for streams). */
  readonly responseBytes: number;
  /** Attempts made (1 unless the call was retried on another node). */
  readonly attempts: number;
}

export interface NodeEvent {
  readonly at: number;
  readonly nodeId: string;
  readonly kind: NodeEventKind;
  /** Function name for per-function events (ejection); '' otherwise. */
  readonly functionName: string;
  readonly detail: string;
}

/** What a finished call contributes to its row (times are clock.now ms). */
export interface CallFacts {
  readonly functionName: string;
  readonly nodeId: string;
  readonly strategy: string;
  readonly client: string;
  readonly arrivedAt: number;
  /** 0 when the call never reached a node. */
  readonly dispatchedAt: number;
  readonly execMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly attempts: number;
}

/** The one place a CallRecord is built. A cache hit names no node or strategy. */
export function callRecord(facts: CallFacts, errorCode: string, cached: boolean, finishedAt: number, now: number): CallRecord {
  return {
    finishedAt,
    // A refused call's name is the caller's input: bounded before it is stored.
    functionName: facts.functionName.length > 128 ? facts.functionName.slice(0, 128) : facts.functionName,
    nodeId: cached ? '' : facts.nodeId,
    strategy: cached ? '' : facts.strategy,
    client: facts.client,
    queueWaitMs: facts.dispatchedAt > 0 ? facts.dispatchedAt - facts.arrivedAt : 0,
    execMs: cached ? 0 : facts.execMs,
    totalMs: now - facts.arrivedAt,
    success: errorCode === '',
    errorCode,
    cached,
    requestBytes: facts.requestBytes,
    responseBytes: facts.responseBytes,
    attempts: facts.attempts,
  };
}
