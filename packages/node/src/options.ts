/** How a function wants to be load balanced: a strategy name or a config object. */
export type LoadBalancing =
  | string
  | {
      strategy: string;
      fallbackStrategy?: string;
      healthCheck?: { enabled?: boolean; timeout?: number; retryCount?: number };
      requirements?: Record<string, string>;
      preferences?: { preferLocal?: boolean | string; maxLatency?: number; costLimit?: number };
      [option: string]: unknown;
    };

/** Options of one remote function. Every field is optional and every field is enforced. */
export interface RemoteOptions {
  /** Name clients call it by; defaults to the method or function name. */
  name?: string;
  /** Time limit of one call in ms (the caller's deadline, if earlier, wins). */
  timeout?: number;
  /** Calls of this function running at once on this node (default: unlimited). */
  maxConcurrent?: number;
  /** Calls waiting on this node for a free slot; beyond it a call is refused as Overloaded (default 0 when maxConcurrent is set). */
  queueSize?: number;
  /** Safe to run twice: the gateway retries it on another node when its node is lost. */
  idempotent?: boolean;
  /** Results may be cached by the gateway (pure functions only). */
  cacheable?: boolean;
  /** Cache lifetime in ms (default 60 000). */
  cacheTtl?: number;
  /** Part of the cache key, and shown to operators. */
  version?: string;
  tags?: string[];
  description?: string;
  /** Cost of this node per hour while running this function (cost_aware). */
  costPerHour?: number;
  /** Relative speed of this node for this function (weighted_round_robin, cost_aware); default 1. */
  performanceTier?: number;
  /** Among calls waiting on this node for a slot, higher priority runs first. */
  priority?: number;
  /** Hard requirements a node must meet to serve it, e.g. { gpuMemory: '>=16GB' }. */
  requirements?: Record<string, string>;
  loadBalancing?: LoadBalancing;
  /** The function is a generator even if it does not look like one (returns an async iterable). */
  stream?: boolean;
}

/** Defaults for the fields the node itself enforces. */
export const DEFAULT_CACHE_TTL_MS = 60_000;

export function validateOptions(name: string, options: RemoteOptions): void {
  const positive = ['timeout', 'maxConcurrent', 'cacheTtl'] as const;
  for (const key of positive) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
      throw new TypeError(`@remote ${name}: ${key} must be a positive number, got ${String(v)}`);
    }
  }
  const nonNegative = ['queueSize', 'costPerHour', 'performanceTier'] as const;
  for (const key of nonNegative) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
      throw new TypeError(`@remote ${name}: ${key} must be a number >= 0, got ${String(v)}`);
    }
  }
  if (options.queueSize !== undefined && options.maxConcurrent === undefined) {
    throw new TypeError(`@remote ${name}: queueSize needs maxConcurrent (the queue holds calls waiting for a slot)`);
  }
  if (options.cacheTtl !== undefined && !options.cacheable) {
    throw new TypeError(`@remote ${name}: cacheTtl is set but cacheable is not`);
  }
  if (options.priority !== undefined && !Number.isInteger(options.priority)) {
    throw new TypeError(`@remote ${name}: priority must be an integer`);
  }
}
