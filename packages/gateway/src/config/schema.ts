// The gateway's configuration as data: every GatewayOptions field that is not code (the
// clock, randomness and the log function are not), each with its type and range. A
// configuration file, environment variables and command-line flags all go through it.
import { z } from 'zod';
import type { GatewayOptions } from '../options.js';
import { hasStrategy, strategyNames } from '../strategies/registry.js';
import { anyObject, atLeast, bool, bytes, expecting, filePath, fraction, integer, ms, port, positive, section, shown, stringMap, strings, text } from './expected.js';

/** A registered strategy name; the list in the error is read when the value is checked. */
const strategy = () =>
  z.string(expecting('a strategy name')).refine(hasStrategy, { error: (iss) => `expected a strategy name (one of ${strategyNames().join(', ')}), got ${shown(iss.input)}` });

const httpUrl = () => {
  const what = 'an http(s) URL';
  return z.string(expecting(what)).refine((v) => /^https?:\/\/[^\s]+$/i.test(v) && URL.canParse(v), expecting(what));
};

const tls = section({
  cert: filePath(),
  key: filePath(),
  clientCa: filePath().optional(),
  nodeCertificates: bool().optional(),
  watchIntervalMs: ms(0).optional(),
});

const functionOverride = section({
  strategy: strategy().optional(),
  fallbackStrategy: z.union([z.literal(''), strategy()], expecting('a strategy name, or "" for none')).optional(),
  strategyOptions: anyObject().optional(),
  healthCheck: section({ enabled: bool().optional(), timeout: ms(0).optional(), retryCount: integer(0).optional() }).optional(),
  requirements: stringMap().optional(),
  preferences: section({
    preferLocal: z.union([z.boolean(), z.string()], expecting('true, false or a location label')).optional(),
    maxLatency: atLeast(0).optional(),
    costLimit: atLeast(0).optional(),
  }).optional(),
  idempotent: bool().optional(),
  timeoutMs: ms(0).optional(),
  cacheable: bool().optional(),
  cacheTtlMs: ms(0).optional(),
  version: z.string(expecting('a string')).optional(),
});

const outlierDetection = section({
  consecutiveFailures: integer(1).optional(),
  failureRateThreshold: fraction().optional(),
  windowMs: ms(1).optional(),
  minRequestVolume: integer(1).optional(),
  baseEjectionMs: ms(0).optional(),
  maxEjectionMs: ms(0).optional(),
  maxEjectedShare: fraction().optional(),
  ejectionDecayMs: ms(1).optional(),
  probeTimeoutMs: ms(1).optional(),
});

const metrics = section({
  path: filePath().optional(),
  flushIntervalMs: ms(1).optional(),
  maxBufferRows: integer(1).optional(),
  maxRowsPerFlush: integer(1).optional(),
  retention: section({ maxAgeMs: integer(1, 'a duration in ms (integer >= 1)').optional(), maxRows: integer(1).optional() }).optional(),
  retentionIntervalMs: ms(1).optional(),
  busyTimeoutMs: ms(0).optional(),
  callerLabel: bool().optional(),
});

const principal = section({
  name: z.string(expecting('a name of 1-128 letters, digits and _ . : @ -')).regex(/^[A-Za-z0-9_.:@-]{1,128}$/, expecting('a name of 1-128 letters, digits and _ . : @ -')),
  token: z.string(expecting('a token of at least 8 characters')).min(8, expecting('a token of at least 8 characters')).optional(),
  sha256: z.string(expecting("a token's SHA-256 (64 hex digits)")).regex(/^[0-9a-fA-F]{64}$/, expecting("a token's SHA-256 (64 hex digits)")).optional(),
  role: z.enum(['node', 'client', 'admin'], expecting('a role (node, client or admin)')),
  nodeIds: strings('a list of node id patterns (non-empty strings)').optional(),
  functions: strings('a list of function name patterns (non-empty strings)').optional(),
  maxConcurrent: positive().optional(),
  callsPerSecond: positive().optional(),
});

const tokens = () => z.array(z.string(expecting('a token of at least 8 characters')).min(8, expecting('a token of at least 8 characters')), expecting('a list of tokens'));

export const gatewayConfigSchema = section({
  port: port().optional(),
  host: text('a host name or IP address (a non-empty string)').optional(),
  insecure: bool().optional(),
  tls: tls.optional(),
  heartbeatMs: ms(1).optional(),
  leaseMs: ms(1).optional(),
  maxPayloadBytes: bytes(1).optional(),
  defaultTimeoutMs: ms(1).optional(),
  retryCount: integer(0).optional(),
  defaultStrategy: strategy().optional(),
  functions: z.record(z.string(), functionOverride, expecting('an object of function configurations by name')).optional(),
  queueSize: integer(0).optional(),
  queueBytes: bytes(0).optional(),
  providerGapMs: ms(0).optional(),
  startupGraceMs: ms(0).optional(),
  availableThreshold: fraction().optional(),
  slowStartMs: ms(0).optional(),
  outlierDetection: outlierDetection.optional(),
  location: z.string(expecting('a location label (a string)')).optional(),
  peers: z.array(text('a gateway address (host:port)'), expecting('a list of gateway addresses (host:port)')).optional(),
  metrics: z.union([z.literal(false), metrics], expecting('false, or an object (path, flushIntervalMs, ...)')).optional(),
  cache: section({ maxBytes: bytes(1).optional(), maxEntryShare: fraction(true).optional() }).optional(),
  httpPort: port().optional(),
  alerts: section({
    intervalMs: ms(1).optional(),
    webhookUrl: httpUrl().optional(),
    thresholds: section({
      recommendImbalance: atLeast(0).optional(),
      recommendLatencyMs: atLeast(0).optional(),
      alertImbalance: atLeast(0).optional(),
      alertLatencyMs: atLeast(0).optional(),
      minMeanForImbalance: atLeast(0).optional(),
    }).optional(),
  }).optional(),
  auth: section({ principals: z.array(principal, expecting('a list of principals')).optional(), nodeTokens: tokens().optional(), clientTokens: tokens().optional() }).optional(),
  lookAside: section({ pickTtlMs: ms(1).optional() }).optional(),
  coalesceFrames: bool().optional(),
  heapHeadroomBytes: bytes(0).optional(),
  shutdownGraceMs: ms(0).optional(),
  // The default logger's settings; a logger of one's own and a destination are code.
  logger: section({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], expecting('a log level (fatal, error, warn, info, debug, trace or silent)')).optional(),
    format: z.enum(['json', 'pretty'], expecting('a log format (json or pretty)')).optional(),
  }).optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

// Checked when compiling: the schema covers every data field of GatewayOptions, and what
// it accepts is a GatewayOptions.
type CodeFields = 'clock' | 'random';
type Uncovered = Exclude<keyof Omit<GatewayOptions, CodeFields>, keyof GatewayConfig>;
const everyFieldCovered: Record<Uncovered, never> = {};
const accepted = (c: GatewayConfig): GatewayOptions => c;
void everyFieldCovered;
void accepted;
