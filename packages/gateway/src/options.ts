// The gateway's options, their defaults, and the checks that run before anything starts.
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_PAYLOAD_BYTES, FunctionSpec } from '@easyremote/protocol';
import type { AuthOptions } from './auth/authenticator.js';
import { DEFAULT_GATEWAY_QUEUE_BYTES, DEFAULT_GATEWAY_QUEUE_SIZE } from './calls/admission-queue.js';
import type { Clock, RandomSource } from './clock.js';
import type { OutlierDetectorOptions } from './health/outlier-detector.js';
import { DEFAULT_SLOW_START_WINDOW_MS } from './health/slow-start.js';
import type { AdvisorThresholds } from './metrics/advisor.js';
import type { MetricsStoreOptions } from './metrics/store.js';
import { DEFAULT_STRATEGY, FunctionEntry, type FunctionConfigOverride } from './registry/function-entry.js';
import { DEFAULT_PROVIDER_GAP_MS } from './registry/registry.js';
import { hasStrategy, strategyNames } from './strategies/registry.js';

export const DEFAULT_PORT = 50051;
export const DEFAULT_HOST = '127.0.0.1';
/** Time limit for calls when neither the caller nor the function sets one. */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;
/** Retries after a lost node or a node-side refusal, for functions that set none. */
export const DEFAULT_RETRY_COUNT = 2;
/** The embedded metrics database, relative to the working directory. */
export const DEFAULT_METRICS_PATH = 'easyremote-metrics.db';

export interface GatewayOptions {
  /** TCP port; 0 picks a free one (read `address` after start). Default 50051. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1; anything else needs auth or `insecure: true`. */
  host?: string;
  /** Listen beyond loopback without authentication. */
  insecure?: boolean;
  /** Heartbeat interval asked of nodes, ms. */
  heartbeatMs?: number;
  /** A node with no frame for this long is lost, ms (default 3 × heartbeat). */
  leaseMs?: number;
  /** Largest args or result payload, bytes. */
  maxPayloadBytes?: number;
  defaultTimeoutMs?: number;
  /** Retries per call for functions whose healthCheck sets no retryCount. */
  retryCount?: number;
  /** Strategy for functions that name none. */
  defaultStrategy?: string;
  /** Gateway-side configuration per function; overrides what nodes declare, calls override it. */
  functions?: Record<string, FunctionConfigOverride>;
  /**
   * Calls per function that may wait at the gateway, when every provider is full or while
   * the function has no usable provider (0 = refuse at once). Default 10,000.
   */
  queueSize?: number;
  /** Bytes of arguments all waiting calls may hold together. Default 256 MiB. */
  queueBytes?: number;
  /**
   * How long a function that lost its last provider is remembered, and how long a call
   * waits for a provider to (re)register before NO_NODE_AVAILABLE (ms). Default 10 s.
   */
  providerGapMs?: number;
  /**
   * After start, calls to a function no node has registered yet wait this long for one
   * (nodes reconnecting after a gateway restart) before FUNCTION_NOT_FOUND (ms). Default: the lease.
   */
  startupGraceMs?: number;
  /** A node whose load (max of CPU and GPU use) reaches this is avoided while others have room. */
  availableThreshold?: number;
  /** Ramp-up window for a node that joins or returns (ms; 0 = off). */
  slowStartMs?: number;
  /** Passive outlier detection (circuit breaking) per node and function. */
  outlierDetection?: Omit<OutlierDetectorOptions, 'providersOf' | 'now'>;
  /** This gateway's location label (preferLocal: true prefers nodes with the same). */
  location?: string;
  /**
   * Call metrics: the SQLite file path (default ./easyremote-metrics.db), ':memory:', or
   * false to record nothing per call: no rows, no live figures (the admin API reports them
   * empty and its statistics as null), no call families at /metrics (its gauges remain).
   */
  metrics?: false | (Partial<Omit<MetricsStoreOptions, 'clock' | 'onError'>> & { path?: string });
  /** Result cache for functions declared cacheable: total bytes, and the largest share one result may take. */
  cache?: { maxBytes?: number; maxEntryShare?: number };
  /** Port of the HTTP API (/api/..., /metrics); undefined = no HTTP server, 0 = any free port. */
  httpPort?: number;
  /** Alert evaluation: interval, thresholds and an optional webhook that receives each new alert. */
  alerts?: { intervalMs?: number; webhookUrl?: string; thresholds?: AdvisorThresholds };
  auth?: AuthOptions;
  /** Injected randomness (strategies). */
  random?: RandomSource;
  /** Injected time (leases, deadlines, ejection, learning, metrics); the system clock by default. */
  clock?: Clock;
  /** Lifecycle log lines (node joined/lost, refusals); never per call. Default: console.error. */
  log?: (line: string) => void;
}

/** The numbers every part reads, defaults applied. */
export interface GatewaySettings {
  readonly host: string;
  readonly port: number;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  readonly maxPayloadBytes: number;
  readonly defaultTimeoutMs: number;
  readonly defaultStrategy: string;
  readonly retryCount: number;
  readonly queueSize: number;
  readonly queueBytes: number;
  readonly providerGapMs: number;
  readonly startupGraceMs: number;
  readonly slowStartMs: number;
}

export function gatewaySettings(options: GatewayOptions): GatewaySettings {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const leaseMs = options.leaseMs ?? Math.max(DEFAULT_LEASE_MS, 3 * heartbeatMs);
  return {
    host: options.host ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
    heartbeatMs,
    leaseMs,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    defaultTimeoutMs: options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
    defaultStrategy: options.defaultStrategy ?? DEFAULT_STRATEGY,
    retryCount: options.retryCount ?? DEFAULT_RETRY_COUNT,
    queueSize: options.queueSize ?? DEFAULT_GATEWAY_QUEUE_SIZE,
    queueBytes: options.queueBytes ?? DEFAULT_GATEWAY_QUEUE_BYTES,
    providerGapMs: options.providerGapMs ?? DEFAULT_PROVIDER_GAP_MS,
    startupGraceMs: options.startupGraceMs ?? leaseMs,
    slowStartMs: options.slowStartMs ?? DEFAULT_SLOW_START_WINDOW_MS,
  };
}

/** Refuses, at construction, strategy names and options no call could route with. */
export function checkFunctionOverrides(settings: GatewaySettings, functions: Record<string, FunctionConfigOverride> = {}): void {
  if (!hasStrategy(settings.defaultStrategy)) {
    throw new TypeError(`gateway defaultStrategy: unknown strategy ${JSON.stringify(settings.defaultStrategy)}; known: ${strategyNames().join(', ')}`);
  }
  for (const [fn, override] of Object.entries(functions)) {
    for (const name of [override.strategy, override.fallbackStrategy]) {
      if (name && !hasStrategy(name)) throw new TypeError(`gateway config for ${fn}: unknown strategy ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`);
    }
    try {
      // A bare declaration, so the override is checked exactly as it will resolve.
      FunctionEntry.prepare(FunctionSpec.fromPartial({ name: fn, kind: 'unary' }), override, { strategy: settings.defaultStrategy, retryCount: settings.retryCount });
    } catch (err) {
      throw new TypeError(`gateway config for ${fn}: ${(err as Error).message}`);
    }
  }
}
