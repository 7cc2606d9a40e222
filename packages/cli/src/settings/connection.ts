// How a command reaches the gateway: its address, a token, and TLS. Shared by `node`,
// `call`, `status` and `top`.
import { z } from 'zod';
import type { ClientTls, NodeTls } from '@easyremote/protocol';
import type { SettingSpec } from './layers.js';
import { addresses, bool, filePath, text } from './values.js';

/** The gateway's default address (its DEFAULT_HOST and DEFAULT_PORT). */
export const DEFAULT_GATEWAY_ADDRESS = '127.0.0.1:50051';

export const CONNECTION_SETTINGS: readonly SettingSpec[] = [
  { path: 'gateway', flag: 'gateway', arg: '<host:port>', env: 'EASYREMOTE_GATEWAY', kind: 'string', help: `gateway address, or several separated by commas (default ${DEFAULT_GATEWAY_ADDRESS})` },
  { path: 'token', env: 'EASYREMOTE_TOKEN', kind: 'string', help: 'token presented to the gateway (authorization: Bearer)' },
  { path: 'tls.enabled', flag: 'tls', env: 'EASYREMOTE_TLS', kind: 'bool', help: "connect with TLS, verifying the gateway against the system's CAs" },
  { path: 'tls.ca', flag: 'tls-ca', arg: '<file>', env: 'EASYREMOTE_TLS_CA', kind: 'string', help: "connect with TLS, verifying the gateway against this CA (PEM file)" },
  { path: 'tls.serverName', flag: 'tls-server-name', arg: '<name>', env: 'EASYREMOTE_TLS_SERVER_NAME', kind: 'string', help: "name the gateway's certificate must carry, when not the address's host" },
];

export const tlsShape = {
  enabled: bool().optional(),
  ca: filePath().optional(),
  serverName: text('a host name (a non-empty string)').optional(),
};

export const connectionShape = {
  gateway: addresses().default(DEFAULT_GATEWAY_ADDRESS),
  token: text('a token (a non-empty string)').optional(),
  tls: z.strictObject(tlsShape).optional(),
};

export const connectionSchema = z.strictObject(connectionShape);
export type Connection = z.output<typeof connectionSchema>;

/** TLS as the client and admin client take it: any file or name given turns it on. */
export function clientTls(tls: Connection['tls']): ClientTls | undefined {
  if (tls === undefined) return undefined;
  if (tls.ca !== undefined || tls.serverName !== undefined) return { ca: tls.ca, serverName: tls.serverName };
  return tls.enabled === true ? true : undefined;
}

/** TLS as the node takes it: the client's, plus the node's own certificate. */
export function nodeTls(tls: (Connection['tls'] & { cert?: string; key?: string }) | undefined): NodeTls | undefined {
  if (tls?.cert !== undefined || tls?.key !== undefined) return { ca: tls.ca, serverName: tls.serverName, cert: tls.cert, key: tls.key };
  return clientTls(tls);
}
