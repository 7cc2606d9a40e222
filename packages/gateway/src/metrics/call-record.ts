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

export type NodeEventKind = 'joined' | 'left' | 'lost' | 'ejected' | 'readmitted' | 'drained' | 'draining' | 'refused';

export interface NodeEvent {
  readonly at: number;
  readonly nodeId: string;
  readonly kind: NodeEventKind;
  /** Function name for per-function events (ejection); '' otherwise. */
  readonly functionName: string;
  readonly detail: string;
}
