import type { FunctionSpec } from '@easyremote/protocol';
import { DEFAULT_CACHE_TTL_MS, type RemoteOptions } from './options.js';
import type { SlotOwner } from './scheduler.js';
import type { WorkerPool } from './worker/worker-pool.js';

export type Handler = (...args: any[]) => unknown;

export interface RegisteredFunction {
  readonly name: string;
  readonly handler: Handler;
  readonly thisArg: unknown;
  readonly options: RemoteOptions;
  readonly kind: 'unary' | 'stream';
  readonly owner: SlotOwner;
  /** Set for functions that run in worker threads. */
  readonly pool?: WorkerPool;
}

const GENERATOR_CTORS = new Set(['GeneratorFunction', 'AsyncGeneratorFunction']);

export function isGeneratorFunction(fn: Handler): boolean {
  return GENERATOR_CTORS.has(fn.constructor?.name);
}

/** The function's declaration as it travels in the register frame. */
export function toSpec(f: RegisteredFunction): FunctionSpec {
  const o = f.options;
  const lb = o.loadBalancing;
  return {
    name: f.name,
    kind: f.kind,
    timeoutMs: o.timeout ?? 0,
    maxConcurrent: Number.isFinite(f.owner.maxConcurrent) ? f.owner.maxConcurrent : 0,
    queueSize: Number.isFinite(f.owner.queueSize) ? f.owner.queueSize : 0,
    idempotent: o.idempotent ?? false,
    cacheable: o.cacheable ?? false,
    cacheTtlMs: o.cacheable ? (o.cacheTtl ?? DEFAULT_CACHE_TTL_MS) : 0,
    version: o.version ?? '',
    tags: o.tags ?? [],
    description: o.description ?? '',
    costPerHour: o.costPerHour ?? 0,
    performanceTier: o.performanceTier ?? 0,
    priority: o.priority ?? 0,
    requirements: o.requirements ?? {},
    loadBalancingJson: lb === undefined ? '' : JSON.stringify(typeof lb === 'string' ? { strategy: lb } : lb),
    worker: f.pool !== undefined,
  };
}
