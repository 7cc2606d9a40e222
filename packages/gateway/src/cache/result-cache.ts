// Opt-in result cache for functions declared cacheable. It stores the raw result bytes
// (MessagePack, exactly as the node sent them) and never decodes a payload.
//
// Keys: function name + version + result profile + SHA-256 of the argument bytes. The
// profile is part of the key because the same call encodes its result differently for a
// full-fidelity caller and a portable one. A fast non-cryptographic
// hash would be cheaper, but arguments come from clients, and a client able to craft a
// collision could be handed another caller's cached result; SHA-256 costs well under a
// millisecond per MiB and makes that infeasible.
//
// Bypass: a caller that must not use the cache (the function is not cacheable, or the
// call asked for a fresh result) simply does not call the cache; nothing needs telling.
//
// Values are shared between every caller that receives them: treat them as read-only.
import type { ResultCacheStats, ResultProfile } from '@easyremote/protocol';
export type { ResultCacheStats };
import { createHash } from 'node:crypto';

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** An entry larger than this share of maxBytes is returned to its callers but not kept. */
export const DEFAULT_MAX_ENTRY_SHARE = 0.125;
/**
 * Added to every entry's size: the key string, the map slots and the entry object. It
 * keeps a flood of tiny results from escaping the byte bound.
 */
export const ENTRY_OVERHEAD_BYTES = 256;

export interface CacheKey {
  readonly functionName: string;
  /** Unique per (function, version, result profile, arguments). */
  readonly id: string;
}

/** Builds the key for one call. `version` is the function's declared version ('' when none). */
export function makeCacheKey(functionName: string, version: string, profile: ResultProfile, args: Uint8Array): CacheKey {
  const digest = createHash('sha256').update(args).digest('base64url');
  // Length prefixes make the id unambiguous whatever characters the names contain.
  return { functionName, id: `${functionName.length}:${functionName}|${version.length}:${version}|${profile}|${digest}` };
}

export interface ResultCacheOptions {
  maxBytes?: number;
  /** 0..1, share of maxBytes one entry may take. */
  maxEntryShare?: number;
  clock?: () => number;
}

/** 'hit': served from the cache; 'computed': this caller ran compute; 'joined': it waited on another caller's compute. */
export type CacheSource = 'hit' | 'computed' | 'joined';

export interface CacheOutcome {
  value: Buffer;
  source: CacheSource;
}

interface Entry {
  readonly key: CacheKey;
  readonly value: Buffer;
  readonly size: number;
  readonly expiresAt: number;
}

interface Flight {
  readonly promise: Promise<Buffer>;
  readonly functionName: string;
}

export class ResultCache {
  private readonly maxBytes: number;
  private readonly maxEntryBytes: number;
  private readonly clock: () => number;
  // Map iteration order is insertion order; a hit re-inserts, so the first entry is the least recently used.
  private readonly entries = new Map<string, Entry>();
  private readonly byFunction = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Flight>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private coalesced = 0;
  private evictions = 0;
  private expirations = 0;
  private uncacheable = 0;

  constructor(options: ResultCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const share = options.maxEntryShare ?? DEFAULT_MAX_ENTRY_SHARE;
    if (!(this.maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${this.maxBytes}`);
    if (!(share > 0 && share <= 1)) throw new RangeError(`maxEntryShare must be in (0, 1], got ${share}`);
    this.maxEntryBytes = Math.floor(this.maxBytes * share);
    this.clock = options.clock ?? Date.now;
  }

  /**
   * The cached result for `key`, or the result of `compute()`. Concurrent callers with
   * the same key share one computation. A failed computation is not cached: every
   * caller waiting on it gets the error and the next call computes again.
   * `ttlMs` must be positive (Infinity: until evicted or invalidated).
   */
  async getOrCompute(key: CacheKey, ttlMs: number, compute: () => Promise<Buffer>): Promise<CacheOutcome> {
    if (!(ttlMs > 0)) throw new RangeError(`cache ttlMs must be positive, got ${ttlMs}`);
    const cached = this.lookup(key.id);
    if (cached !== undefined) {
      this.hits++;
      return { value: cached, source: 'hit' };
    }
    const running = this.inflight.get(key.id);
    if (running !== undefined) {
      this.coalesced++;
      return { value: await running.promise, source: 'joined' };
    }
    this.misses++;
    let promise: Promise<Buffer>;
    try {
      promise = compute();
    } catch (err) {
      promise = Promise.reject(err);
    }
    const flight: Flight = { promise, functionName: key.functionName };
    this.inflight.set(key.id, flight);
    let value: Buffer;
    try {
      value = await promise;
    } catch (err) {
      if (this.inflight.get(key.id) === flight) this.inflight.delete(key.id);
      throw err;
    }
    // invalidate() may have dropped this flight (and a newer one may have started since):
    // only a flight still registered clears its slot and keeps its result.
    if (this.inflight.get(key.id) === flight) {
      this.inflight.delete(key.id);
      this.store(key, value, ttlMs);
    }
    return { value, source: 'computed' };
  }

  /** The cached result without computing anything, or undefined. Counts as a hit or a miss. */
  get(key: CacheKey): Buffer | undefined {
    const value = this.lookup(key.id);
    if (value === undefined) this.misses++;
    else this.hits++;
    return value;
  }

  /**
   * Drops every entry of the function (its version changed, or an operator asked).
   * Computations in flight still answer their callers but their results are not kept,
   * since they may have been computed against what was just invalidated.
   */
  invalidate(functionName: string): number {
    const ids = this.byFunction.get(functionName);
    let removed = 0;
    if (ids !== undefined) {
      for (const id of [...ids]) {
        const entry = this.entries.get(id);
        if (entry !== undefined) {
          this.remove(entry);
          removed++;
        }
      }
    }
    for (const [id, flight] of this.inflight) {
      if (flight.functionName === functionName) this.inflight.delete(id);
    }
    return removed;
  }

  /** Removes expired entries now (they are otherwise removed when looked up or reached by eviction). */
  prune(): number {
    const now = this.clock();
    let removed = 0;
    for (const entry of [...this.entries.values()]) {
      if (entry.expiresAt <= now) {
        this.remove(entry);
        this.expirations++;
        removed++;
      }
    }
    return removed;
  }

  /** Drops every entry, and, as invalidate() does, keeps no result from computations in flight. */
  clear(): void {
    this.inflight.clear();
    this.entries.clear();
    this.byFunction.clear();
    this.bytes = 0;
  }

  stats(): ResultCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      coalesced: this.coalesced,
      evictions: this.evictions,
      expirations: this.expirations,
      uncacheable: this.uncacheable,
      entries: this.entries.size,
      bytes: this.bytes,
      inflight: this.inflight.size,
    };
  }

  private lookup(id: string): Buffer | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.remove(entry);
      this.expirations++;
      return undefined;
    }
    this.entries.delete(id);
    this.entries.set(id, entry);
    return entry.value;
  }

  private store(key: CacheKey, result: Buffer, ttlMs: number): void {
    const size = result.byteLength + ENTRY_OVERHEAD_BYTES;
    if (size > this.maxEntryBytes) {
      this.uncacheable++;
      return;
    }
    // A Buffer that views part of a larger allocation (a pooled or received chunk) would
    // keep the whole allocation alive behind a small accounted size; keep a private copy.
    let value = result;
    if (result.byteOffset !== 0 || result.buffer.byteLength !== result.byteLength) {
      value = Buffer.allocUnsafeSlow(result.byteLength);
      result.copy(value);
    }
    const previous = this.entries.get(key.id);
    if (previous !== undefined) this.remove(previous);
    const entry: Entry = { key, value, size, expiresAt: this.clock() + ttlMs };
    this.entries.set(key.id, entry);
    let ids = this.byFunction.get(key.functionName);
    if (ids === undefined) {
      ids = new Set();
      this.byFunction.set(key.functionName, ids);
    }
    ids.add(key.id);
    this.bytes += size;
    this.evictUntilWithinBound(entry);
  }

  private evictUntilWithinBound(keep: Entry): void {
    if (this.bytes <= this.maxBytes) return;
    const now = this.clock();
    for (const entry of this.entries.values()) {
      if (this.bytes <= this.maxBytes) break;
      if (entry === keep) continue;
      this.remove(entry);
      if (entry.expiresAt <= now) this.expirations++;
      else this.evictions++;
    }
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.key.id);
    this.bytes -= entry.size;
    const ids = this.byFunction.get(entry.key.functionName);
    if (ids !== undefined) {
      ids.delete(entry.key.id);
      if (ids.size === 0) this.byFunction.delete(entry.key.functionName);
    }
  }
}
