// The `direct` option of a ComputeNode: where it listens for clients that call it without
// the gateway (look-aside mode), the address it advertises, and who may call.
import { hostname } from 'node:os';
import { Authenticator, DEFAULT_MAX_PAYLOAD_BYTES, type AuthOptions } from '@easyremote/protocol';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const ANY_INTERFACE = new Set(['0.0.0.0', '::', '[::]', '']);

export interface DirectOptions {
  /** host:port to listen on, e.g. '0.0.0.0:7001'; port 0 picks a free one. */
  listen: string;
  /**
   * host:port clients are told to dial (what the gateway hands out in picks). Default: the
   * listen address, with this machine's host name for an any-interface host and the bound
   * port for port 0.
   */
  advertise?: string;
  /** TLS on the direct port: the node's certificate and key (file paths, or PEM text or bytes). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Who may call: the same principals (client and admin roles; node principals are not
   * callers) or client tokens as the gateway's `auth`, so one token works on both paths.
   * Without it the direct port is open to anyone who can reach it.
   */
  auth?: AuthOptions;
  /** Listen beyond loopback without TLS or without client authentication. */
  insecure?: boolean;
  /** Largest arguments or result, bytes (default 64 MiB, as the gateway's). */
  maxPayloadBytes?: number;
  /** Time limit for functions that set none, ms (default 300 s, as the gateway's). */
  defaultTimeoutMs?: number;
}

/** host and port of 'host:port' or '[v6]:port'; throws naming the option. */
export function splitHostPort(value: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (m === null || !(port <= 65535)) throw new TypeError(`${option}: expected host:port (an IPv6 host in brackets), got ${JSON.stringify(value)}`);
  return { host: m[1] ?? m[2]!, port };
}

/** 'host:port', bracketing an IPv6 literal. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The settings a direct server runs with, checked when the node is built. */
export interface DirectSettings {
  readonly host: string;
  readonly port: number;
  readonly advertise: { host: string; port: number | undefined };
  readonly auth: Authenticator;
  readonly tls: DirectOptions['tls'];
  readonly maxPayloadBytes: number;
  readonly defaultTimeoutMs: number;
}

export function directSettings(o: DirectOptions): DirectSettings {
  if (typeof o !== 'object' || o === null || typeof o.listen !== 'string') throw new TypeError('direct: { listen: "host:port" } is required');
  const { host, port } = splitHostPort(o.listen, 'direct.listen');
  const advertised = o.advertise === undefined ? undefined : splitHostPort(o.advertise, 'direct.advertise');
  const auth = new Authenticator(o.auth);
  const tls = o.tls;
  if (tls !== undefined && (tls.cert === undefined || tls.key === undefined)) throw new TypeError('direct.tls: cert and key are both required');
  // As for the gateway: beyond loopback, payloads and tokens cross a shared network.
  if (!LOOPBACK.has(host) && !o.insecure) {
    const missing: string[] = [];
    if (tls === undefined) missing.push('TLS (direct.tls: { cert, key })');
    if (!auth.callersAuthenticate) missing.push('client tokens (direct.auth)');
    if (missing.length > 0) throw new Error(`refusing to listen directly on ${host} without TLS and authentication: missing ${missing.join(', ')}; set them, or direct.insecure: true to accept the risk`);
  }
  for (const [key, value] of [['maxPayloadBytes', o.maxPayloadBytes], ['defaultTimeoutMs', o.defaultTimeoutMs]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new TypeError(`direct.${key} must be a number > 0, got ${String(value)}`);
  }
  return {
    host,
    port,
    // Port 0 in either address means the port bound.
    advertise: { host: advertised?.host ?? (ANY_INTERFACE.has(host) ? hostname() : host), port: (advertised?.port ?? port) || undefined },
    auth,
    tls,
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    defaultTimeoutMs: o.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
  };
}

/** As the gateway's default: the limit of a call to a function that sets none. */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;
