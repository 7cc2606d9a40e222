// The gateway configuration file: JSON with the GatewayOptions fields that are data
// (no functions), e.g.
//   { "port": 50051, "defaultStrategy": "least_connections",
//     "functions": { "train_model": { "strategy": "resource_aware",
//                                      "requirements": { "gpuMemory": ">=16GB" },
//                                      "healthCheck": { "timeout": 60000, "retryCount": 1 } } } }
// Its per-function entries override what nodes declare; a call's options override both.
import { readFileSync } from 'node:fs';
import type { GatewayOptions } from './gateway.js';

const ALLOWED = new Set([
  'port', 'host', 'insecure', 'heartbeatMs', 'leaseMs', 'maxPayloadBytes', 'defaultTimeoutMs', 'retryCount', 'defaultStrategy',
  'functions', 'queueSize', 'availableThreshold', 'slowStartMs', 'outlierDetection', 'location', 'peers', 'metrics', 'cache', 'httpPort', 'alerts', 'auth', 'tls',
]);

export function loadGatewayConfig(path: string): GatewayOptions {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`gateway config ${path}: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`gateway config ${path}: must be a JSON object`);
  const unknown = Object.keys(raw).filter((k) => !ALLOWED.has(k));
  if (unknown.length > 0) throw new Error(`gateway config ${path}: unknown field(s) ${unknown.join(', ')}`);
  return raw as GatewayOptions;
}
