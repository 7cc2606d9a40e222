// The gateway configuration file: JSON with the GatewayOptions fields that are data
// (no functions), e.g.
//   { "port": 50051, "defaultStrategy": "least_connections",
//     "functions": { "train_model": { "strategy": "resource_aware",
//                                      "requirements": { "gpuMemory": ">=16GB" },
//                                      "healthCheck": { "timeout": 60000, "retryCount": 1 } } } }
// Its per-function entries override what nodes declare; a call's options override both.
// Every value is checked against the schema before anything starts.
import { readFileSync } from 'node:fs';
import type { GatewayOptions } from '../options.js';
import { GatewayConfigError, problemsOf } from './config-error.js';
import { gatewayConfigSchema } from './schema.js';

/** Checks a configuration document; throws GatewayConfigError naming `source` and each value refused. */
export function parseGatewayConfig(document: unknown, source = 'gateway config'): GatewayOptions {
  const parsed = gatewayConfigSchema.safeParse(document, { reportInput: true });
  if (!parsed.success) throw new GatewayConfigError(source, problemsOf(parsed.error.issues));
  return parsed.data;
}

/** Reads and checks a JSON configuration file. */
export function loadGatewayConfig(path: string): GatewayOptions {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new GatewayConfigError(`gateway config ${path}`, [{ path: '', message: (err as Error).message }]);
  }
  return parseGatewayConfig(document, `gateway config ${path}`);
}
