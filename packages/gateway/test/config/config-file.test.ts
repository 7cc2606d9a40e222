// The gateway configuration file: every value is checked against the schema, and a
// refusal names the value's path and what was expected there.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway, GatewayConfigError, gatewayConfigSchema, loadGatewayConfig, parseGatewayConfig } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Every data field of GatewayOptions, with a valid value. */
const EVERYTHING = {
  port: 0,
  host: '127.0.0.1',
  insecure: false,
  heartbeatMs: 1000,
  leaseMs: 3000,
  maxPayloadBytes: 1_000_000,
  defaultTimeoutMs: 60_000,
  retryCount: 1,
  defaultStrategy: 'least_connections',
  functions: {
    train: {
      strategy: 'resource_aware',
      fallbackStrategy: 'round_robin',
      strategyOptions: {},
      healthCheck: { enabled: true, timeout: 60_000, retryCount: 1 },
      requirements: { gpuMemory: '>=16GB' },
      preferences: { preferLocal: 'eu', maxLatency: 100, costLimit: 2 },
      idempotent: true,
      timeoutMs: 120_000,
      cacheable: true,
      cacheTtlMs: 10_000,
      version: '2',
    },
  },
  queueSize: 100,
  queueBytes: 1_000_000,
  providerGapMs: 5000,
  startupGraceMs: 0,
  availableThreshold: 0.9,
  slowStartMs: 0,
  outlierDetection: {
    consecutiveFailures: 5,
    failureRateThreshold: 0.5,
    windowMs: 10_000,
    minRequestVolume: 10,
    baseEjectionMs: 1000,
    maxEjectionMs: 60_000,
    maxEjectedShare: 0.5,
    ejectionDecayMs: 60_000,
    probeTimeoutMs: 5000,
  },
  location: 'eu',
  peers: ['127.0.0.1:50052'],
  metrics: { path: ':memory:', flushIntervalMs: 500, maxBufferRows: 1000, maxRowsPerFlush: 100, retention: { maxAgeMs: 86_400_000, maxRows: 10_000 }, retentionIntervalMs: 60_000, busyTimeoutMs: 20, callerLabel: true },
  cache: { maxBytes: 1_000_000, maxEntryShare: 0.5 },
  httpPort: 0,
  alerts: { intervalMs: 5000, webhookUrl: 'http://127.0.0.1:9/hook', thresholds: { recommendImbalance: 0.3, recommendLatencyMs: 500, alertImbalance: 0.5, alertLatencyMs: 1000, minMeanForImbalance: 1 } },
  auth: {
    principals: [
      { name: 'ops', token: 'ops-token-123', role: 'admin' },
      { name: 'gpu-nodes', sha256: 'a'.repeat(64), role: 'node', nodeIds: ['gpu-*'] },
      { name: 'app', token: 'app-token-123', role: 'client', functions: ['train'], maxConcurrent: 10, callsPerSecond: 50 },
    ],
    nodeTokens: ['node-token-123'],
    clientTokens: ['client-token-123'],
  },
  lookAside: { pickTtlMs: 500 },
  coalesceFrames: true,
  heapHeadroomBytes: 32 * 1024 * 1024,
  shutdownGraceMs: 10_000,
  logger: { level: 'silent', format: 'json' },
};

describe('loadGatewayConfig', () => {
  it('accepts every data field of GatewayOptions, and a gateway starts from the result', async () => {
    const options = loadGatewayConfig(file('everything.json', EVERYTHING));
    expect(options).toEqual(EVERYTHING);
    // tls needs certificate files; the schema's shape for it is checked below.
    const gw = new Gateway(options);
    await gw.start();
    expect(gw.settings).toMatchObject({ heartbeatMs: 1000, leaseMs: 3000, defaultStrategy: 'least_connections', shutdownGraceMs: 10_000 });
    await gw.stop();
    expect(Object.keys(gatewayConfigSchema.shape).sort()).toEqual([...Object.keys(EVERYTHING), 'tls'].sort());
  });

  it('refuses a value of the wrong type or range, naming its path and the expected type', () => {
    expect(() => loadGatewayConfig(file('admin.json', { httpPort: 'admin' }))).toThrow(/^gateway config .*admin\.json: httpPort: expected a port number \(integer 0\.\.65535\), got "admin"$/);
    expect(() => loadGatewayConfig(file('negative.json', { heartbeatMs: -5 }))).toThrow(/: heartbeatMs: expected a duration in ms \(integer 1\.\.2147483647\), got -5$/);
  });

  it('reports every problem, nested paths included', () => {
    let err: GatewayConfigError | undefined;
    try {
      loadGatewayConfig(
        file('many.json', {
          port: 70_000,
          tls: { cert: 'gw.pem' },
          functions: { train: { strategy: 'fastest', healthCheck: { timeout: 1.5 } } },
          auth: { principals: [{ name: 'x', role: 'boss', token: 'short' }] },
          metrics: { flushIntervalMs: 'often' },
          cache: { maxEntryShare: 0 },
          alerts: { webhookUrl: 'ftp://example' },
          availableThreshold: 2,
        }),
      );
    } catch (e) {
      err = e as GatewayConfigError;
    }
    expect(err).toBeInstanceOf(GatewayConfigError);
    expect(err!.problems).toEqual([
      { path: 'port', message: 'expected a port number (integer 0..65535), got 70000' },
      { path: 'tls.key', message: 'expected a file path (a non-empty string), got nothing' },
      { path: 'functions.train.strategy', message: expect.stringMatching(/^expected a strategy name \(one of .*round_robin.*\), got "fastest"$/) },
      { path: 'functions.train.healthCheck.timeout', message: 'expected a duration in ms (integer 0..2147483647), got 1.5' },
      { path: 'availableThreshold', message: 'expected a fraction (number 0..1), got 2' },
      { path: 'metrics.flushIntervalMs', message: 'expected a duration in ms (integer 1..2147483647), got "often"' },
      { path: 'cache.maxEntryShare', message: 'expected a fraction (number > 0 and <= 1), got 0' },
      { path: 'alerts.webhookUrl', message: 'expected an http(s) URL, got "ftp://example"' },
      { path: 'auth.principals[0].token', message: 'expected a token of at least 8 characters, got "short"' },
      { path: 'auth.principals[0].role', message: 'expected a role (node, client or admin), got "boss"' },
    ]);
  });

  it('refuses unknown fields, naming them and the known ones', () => {
    expect(() => parseGatewayConfig({ prot: 1 }, 'x.json')).toThrow(/^x\.json: unknown field\(s\) prot \(known: port, host, /);
    expect(() => parseGatewayConfig({ tls: { cert: 'a', key: 'b', ca: 'c' } }, 'x.json')).toThrow(/^x\.json: tls: unknown field\(s\) ca \(known: cert, key, clientCa, nodeCertificates, watchIntervalMs\)$/);
  });

  it('metrics is false or an object; a document that is not an object is refused', () => {
    expect(parseGatewayConfig({ metrics: false })).toEqual({ metrics: false });
    expect(() => parseGatewayConfig({ metrics: true }, 'x')).toThrow(/^x: metrics: expected false, or an object \(path, flushIntervalMs, \.\.\.\), got true$/);
    expect(() => parseGatewayConfig(['port'], 'x')).toThrow(/^x: expected an object \(port, host, .*\), got \["port"\]$/);
  });

  it('a file that is not JSON is refused with the parser message', () => {
    expect(() => loadGatewayConfig(file('broken.json', '{ "port": '))).toThrow(/^gateway config .*broken\.json: .*JSON/);
  });
});
