/** Per-call options: the third argument of `client.call`, or bound with `client.with(...)`. */
export interface CallOptions {
  /** Time limit in ms from now (becomes the gRPC deadline, propagated to the node). */
  timeout?: number;
  /** Absolute deadline; the earlier of this and `timeout` wins. */
  deadline?: Date | number;
  /** Aborting it cancels the call; the handler's signal fires. */
  signal?: AbortSignal;
  /** Routing strategy for this call only. */
  strategy?: string;
  fallbackStrategy?: string;
  /** consistent_hash key: calls with the same key go to the same node while it lives. */
  affinityKey?: string;
  /** Skip the gateway's result cache for this call. */
  noCache?: boolean;
  /** smart_adaptive hint: relative size of the work (1 = typical). */
  complexity?: number;
  /** Extra hard requirements for this call, e.g. { gpuMemory: '>=24GB' }. */
  requirements?: Record<string, string>;
  /** Prefer nodes whose `location` label equals this. */
  preferLocation?: string;
  /** Drop nodes whose expected latency exceeds this (ms). */
  maxLatency?: number;
  /** Per-call budget (cost_aware). */
  maxCost?: number;
  /** gRPC metadata the handler sees as `currentCall().metadata`. */
  metadata?: Record<string, string>;
  /** Progress reports from the handler (0..1). */
  onProgress?: (fraction: number, message: string) => void;
}

export function mergeOptions(base: CallOptions | undefined, extra: CallOptions | undefined): CallOptions {
  if (!base) return extra ?? {};
  if (!extra) return base;
  return { ...base, ...extra, metadata: base.metadata || extra.metadata ? { ...base.metadata, ...extra.metadata } : undefined };
}
