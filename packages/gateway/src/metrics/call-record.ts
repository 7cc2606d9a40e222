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
  /** The caller's peer address, as gRPC reports it. */
  readonly client: string;
  /** The authenticated principal that made the call; '' when clients do not authenticate. */
  readonly caller: string;
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

/** What a finished call contributes to its row (times are clock.now ms); a PendingCall is one. */
export interface CallFacts {
  readonly nodeId: string;
  readonly strategy: string;
  readonly client: string;
  readonly caller: { readonly callerName: string };
  readonly arrivedAt: number;
  /** 0 when the call never reached a node. */
  readonly dispatchedAt: number;
  readonly execMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly attempts: number;
}

/** A row being filled: the recorder keeps one and refills it for every call, so recording allocates nothing. */
export type CallRow = { -readonly [K in keyof CallRecord]: CallRecord[K] };

export function newCallRow(): CallRow {
  return {
    finishedAt: 0,
    functionName: '',
    nodeId: '',
    strategy: '',
    client: '',
    caller: '',
    queueWaitMs: 0,
    execMs: 0,
    totalMs: 0,
    success: true,
    errorCode: '',
    cached: false,
    requestBytes: 0,
    responseBytes: 0,
    attempts: 0,
  };
}

/** Longest function name a row keeps. */
export const MAX_ROW_FUNCTION_NAME = 128;

/** The one place a row's fields are worked out, into `out`. A cache hit names no node or strategy. */
export function fillCallRecord(out: CallRow, functionName: string, facts: CallFacts, errorCode: string, cached: boolean, finishedAt: number, now: number): CallRow {
  out.finishedAt = finishedAt;
  // A refused call's name is the caller's input: bounded before it is stored.
  out.functionName = functionName.length > MAX_ROW_FUNCTION_NAME ? functionName.slice(0, MAX_ROW_FUNCTION_NAME) : functionName;
  out.nodeId = cached ? '' : facts.nodeId;
  out.strategy = cached ? '' : facts.strategy;
  out.client = facts.client;
  out.caller = facts.caller.callerName;
  out.queueWaitMs = facts.dispatchedAt > 0 ? facts.dispatchedAt - facts.arrivedAt : 0;
  out.execMs = cached ? 0 : facts.execMs;
  out.totalMs = now - facts.arrivedAt;
  out.success = errorCode === '';
  out.errorCode = errorCode;
  out.cached = cached;
  out.requestBytes = facts.requestBytes;
  out.responseBytes = facts.responseBytes;
  out.attempts = facts.attempts;
  return out;
}

