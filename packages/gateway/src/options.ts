// The gateway's options, their defaults, and the checks that run before anything starts.
import { checkHeapHeadroomBytes, DEFAULT_HEARTBEAT_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_PAYLOAD_BYTES, FunctionSpec, type LoggerOption } from '@easyremote/protocol';
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

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** TLS on the gRPC port and the HTTP API: PEM files, reloaded without a restart when they change. */
export interface GatewayTlsOptions {
  /** The gateway's certificate (with its chain); its subjectAltName names the address clients and nodes dial. */
  cert: string;
  /** The certificate's private key. */
  key: string;
  /**
   * CA that signs node certificates. Clients are asked for a certificate but need none; on
   * its own this only verifies certificates presented, `nodeCertificates` requires them.
   */
  clientCa?: string;
  /**
   * Nodes must present a certificate signed by `clientCa`, and a node's id is the one it
   * names (its first DNS subjectAltName, else its first URI, else its CN): a node
   * registering under another id is refused with UNAUTHENTICATED.
   */
  nodeCertificates?: boolean;
  /** How often the files are checked for changes, ms (default 5000; 0 = only on SIGHUP or `reloadCertificates()`). */
  watchIntervalMs?: number;
}

export interface GatewayOptions {
  /** TCP port; 0 picks a free one (read `address` after start). Default 50051. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1; anything else needs TLS and authentication, or `insecure: true`. */
  host?: string;
  /** Listen beyond loopback without TLS or without authentication. */
  insecure?: boolean;
  /** TLS on the gRPC port and the HTTP API (HTTPS). */
  tls?: GatewayTlsOptions;
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
   * The other gateways that serve the same nodes (host:port, as the nodes dial them). Shown
   * to operators with what the nodes report about each (`/api/peers`, `Admin.Peers`); no
   * gateway dials another, and none needs another to route a call. docs/several-gateways.md.
   */
  peers?: string[];
  /**
   * Call metrics: the SQLite file path (default ./easyremote-metrics.db), ':memory:', or
   * false to record nothing per call: no rows, no live figures (the admin API reports them
   * empty and its statistics as null), no call families at /metrics (its gauges remain).
   * `callerLabel: true` adds easyremote_caller_calls_total{caller, outcome} at /metrics.
   */
  metrics?: false | (Partial<Omit<MetricsStoreOptions, 'clock' | 'onError'>> & { path?: string; callerLabel?: boolean });
  /** Result cache for functions declared cacheable: total bytes, and the largest share one result may take. */
  cache?: { maxBytes?: number; maxEntryShare?: number };
  /**
   * The LoadBalancer service (look-aside mode, docs/look-aside.md): how long a client may
   * start calls on a pick after asking for it, ms (default 1000).
   */
  lookAside?: { pickTtlMs?: number };
  /** Port of the HTTP API (/api/..., /metrics); undefined = no HTTP server, 0 = any free port. */
  httpPort?: number;
  /** Alert evaluation: interval, thresholds and an optional webhook that receives each new alert. */
  alerts?: { intervalMs?: number; webhookUrl?: string; thresholds?: AdvisorThresholds };
  auth?: AuthOptions;
  /**
   * Frames to a node or a session produced in one turn of the event loop go out as one
   * message (default true; on a quiet stream the turn's first frame is written at once,
   * so a lone call waits for nothing). Off, each frame is its own message: more CPU per
   * call under load (BENCHMARKS.md, "Frame coalescing").
   */
  coalesceFrames?: boolean;
  /**
   * While the gateway runs, V8 may let its heap grow this many bytes past what survived the
   * last full collection before the next one (default 64 MiB; 0 leaves V8's own choice), as
   * long as that is under 4 times this. Relaying large payloads otherwise runs a full
   * collection every few MB. Process-wide; see docs/operations.md, "Large payloads".
   */
  heapHeadroomBytes?: number;
  /** Injected randomness (strategies). */
  random?: RandomSource;
  /** Injected time (leases, deadlines, ejection, learning, metrics); the system clock by default. */
  clock?: Clock;
  /**
   * How long `stop()` lets calls in flight finish before ending them, when it is given no
   * `graceMs` (ms). Default 0: they are ended at once.
   */
  shutdownGraceMs?: number;
  /**
   * Lifecycle logging (listening, stopping, nodes joined, lost, refused and draining,
   * ejections, certificate reloads, alerts); never one line per call. A pino `Logger` of
   * your own (lines get `component: "gateway"` and `gatewayId`), or `{ level, format,
   * destination }` for the default one: pino on stderr at $EASYREMOTE_LOG_LEVEL (default
   * `info`), JSON lines unless stderr is a terminal. See docs/operations.md.
   */
  logger?: LoggerOption;
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
  readonly shutdownGraceMs: number;
}

export interface StopOptions {
  /** How long calls in flight may take to finish before they are ended (ms); default: the gateway's `shutdownGraceMs`. */
  graceMs?: number;
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
    shutdownGraceMs: options.shutdownGraceMs ?? 0,
  };
}

/** Refuses, at construction, a `peers` option that is not a list of host:port strings. */
export function checkPeers(peers: unknown): void {
  if (peers === undefined) return;
  if (!Array.isArray(peers) || peers.some((p) => typeof p !== 'string' || p === '')) throw new TypeError(`gateway peers must be a list of host:port strings, got ${JSON.stringify(peers)}`);
}

/** Refuses, at construction, TLS options that cannot work together. */
export function checkTlsOptions(tls: GatewayTlsOptions | undefined): void {
  if (tls === undefined) return;
  if (typeof tls.cert !== 'string' || typeof tls.key !== 'string') throw new TypeError('gateway tls: cert and key are PEM file paths, and both are required');
  if (tls.nodeCertificates && tls.clientCa === undefined) throw new TypeError('gateway tls: nodeCertificates needs clientCa, the CA node certificates are verified against');
  if (tls.watchIntervalMs !== undefined && !(Number.isFinite(tls.watchIntervalMs) && tls.watchIntervalMs >= 0)) {
    throw new TypeError(`gateway tls: watchIntervalMs must be a number >= 0, got ${String(tls.watchIntervalMs)}`);
  }
}

/** Who must prove who they are before the gateway serves them. */
export interface Exposure {
  tls: boolean;
  /** Nodes present a token or a certificate. */
  nodesAuthenticated: boolean;
  clientsAuthenticated: boolean;
  insecure: boolean;
}

/**
 * Listening beyond loopback puts the gateway on a network others share: without TLS,
 * tokens and payloads cross it readable; without authentication, anyone may register a
 * node or call. Either needs saying so explicitly (`insecure: true`).
 */
export function checkExposure(host: string, e: Exposure): void {
  if (LOOPBACK.has(host) || e.insecure) return;
  const missing: string[] = [];
  if (!e.tls) missing.push('TLS (tls: { cert, key })');
  if (!e.nodesAuthenticated) missing.push('node authentication (node tokens, or tls.nodeCertificates)');
  if (!e.clientsAuthenticated) missing.push('client tokens');
  if (missing.length === 0) return;
  throw new Error(`refusing to listen on ${host} without TLS and authentication: missing ${missing.join(', ')}; set them, or insecure: true to accept the risk`);
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

/** Every check on options made at construction, before anything is built. */
export function checkOptions(settings: GatewaySettings, options: GatewayOptions): void {
  checkFunctionOverrides(settings, options.functions);
  checkTlsOptions(options.tls);
  checkPeers(options.peers);
  checkHeapHeadroomBytes(options.heapHeadroomBytes, 'gateway');
}
