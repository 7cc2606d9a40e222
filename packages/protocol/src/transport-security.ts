// TLS as the client, the node and the admin client see it: channel credentials from the
// `tls` option, the identity a certificate names, and a connection failure told apart
// from an unreachable gateway (a TLS mismatch or a refused certificate says so, instead
// of a bare "No connection established").
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { credentials, type ChannelCredentials, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { EasyRemoteError, fromServiceError, GatewayUnavailable } from './errors.js';

/** How a client verifies the gateway: a CA (a PEM file path, or PEM text or bytes) and the name its certificate must carry. */
export interface TlsClientOptions {
  /** CA that signed the gateway's certificate: a file path, or PEM text or bytes. Default: the system roots. */
  ca?: string | Buffer;
  /** Name to verify the gateway's certificate against, when it is not the host in the address. */
  serverName?: string;
}

/** `true`: TLS verified against the system roots. */
export type ClientTls = TlsClientOptions | true;

/** A node's TLS: the client's, plus its own certificate for gateways that require one. */
export interface NodeTlsOptions extends TlsClientOptions {
  /** The node's certificate (file path, or PEM text or bytes); its subjectAltName or CN is the node's id. */
  cert?: string | Buffer;
  /** The certificate's private key (file path, or PEM text or bytes). */
  key?: string | Buffer;
}

export type NodeTls = NodeTlsOptions | true;

/** What a channel to the gateway is built with. */
export interface ChannelSecurity {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
  /** Whether the channel uses TLS (failures are explained accordingly). */
  readonly secure: boolean;
}

/** PEM bytes from a file path, PEM text or bytes; a read error names the option. */
export function readPem(value: string | Buffer, option: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value.trimStart().startsWith('-----BEGIN')) return Buffer.from(value);
  try {
    return readFileSync(value);
  } catch (err) {
    throw new TypeError(`${option}: cannot read ${value}: ${(err as Error).message}`, { cause: err });
  }
}

/** Credentials and channel options for `tls` (undefined or false: plaintext). */
export function channelSecurity(tls: NodeTls | false | undefined): ChannelSecurity {
  if (tls === undefined || tls === false) return { credentials: credentials.createInsecure(), options: {}, secure: false };
  const o: NodeTlsOptions = tls === true ? {} : tls;
  if ((o.cert === undefined) !== (o.key === undefined)) throw new TypeError('tls: cert and key go together');
  const ca = o.ca === undefined ? null : readPem(o.ca, 'tls.ca');
  const key = o.key === undefined ? null : readPem(o.key, 'tls.key');
  const cert = o.cert === undefined ? null : readPem(o.cert, 'tls.cert');
  const options: ChannelOptions = o.serverName ? { 'grpc.ssl_target_name_override': o.serverName } : {};
  return { credentials: credentials.createSsl(ca, key, cert), options, secure: true };
}

/** The `Last error` of a grpc-js connection failure, without OpenSSL's source locations. */
function lastError(details: string): string {
  const last = /Last error: (?:Error: )?([\s\S]*?)(?:\.?\s*Resolution note:[\s\S]*)?$/.exec(details)?.[1] ?? details;
  const ssl = /SSL routines:(?:[^:]*:)?([^:]+)/.exec(last);
  return (ssl?.[1] ?? last).trim();
}

const NOT_TLS = /wrong version number|packet length too long|unknown protocol|http request|record layer failure|unexpected eof while reading/i;
const CERTIFICATE_REFUSED = /certificate|self[- ]signed|unable to verify|does not match|altname|CERT_/i;
const CLOSED_BEFORE_HTTP2 = /Failed to connect \(|ECONNRESET|socket hang up/;

/**
 * What a failure to connect says about TLS, as a sentence about `address`; undefined when
 * it says nothing (nothing listening, DNS, a timeout).
 */
export function explainConnectFailure(details: string, address: string, secure: boolean): string | undefined {
  const reason = lastError(details);
  if (secure) {
    if (NOT_TLS.test(details)) {
      return `gateway ${address} does not speak TLS: it may be listening in plaintext (this connection uses TLS; configure tls on the gateway, or leave it out here) [${reason}]`;
    }
    if (CERTIFICATE_REFUSED.test(details)) {
      return `the certificate of gateway ${address} was not accepted: ${reason} (check tls.ca, and tls.serverName when the address is not a name the certificate carries)`;
    }
    return undefined;
  }
  // A TLS listener drops a peer that opens with HTTP/2 instead of a TLS handshake.
  if (CLOSED_BEFORE_HTTP2.test(details)) {
    return `gateway ${address} refused the connection: it may require TLS (this connection is plaintext; set the tls option) [${reason}]`;
  }
  return undefined;
}

/** fromServiceError, with a transport failure that a TLS mismatch explains saying so. */
export function transportError(err: ServiceError, address: string, secure: boolean): EasyRemoteError {
  const e = fromServiceError(err, address);
  if (e.code !== 'GATEWAY_UNAVAILABLE') return e;
  const explained = explainConnectFailure(err.details || err.message, address, secure);
  return explained === undefined ? e : new GatewayUnavailable(explained, { cause: err });
}

/** One subjectAltName entry as Node writes it (`DNS:a`, or `DNS:"a,b"` quoted as JSON). */
const SAN_ENTRY = /([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/y;

function sanEntries(subjectAltName: string): Array<[type: string, value: string]> {
  const entries: Array<[string, string]> = [];
  SAN_ENTRY.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (SAN_ENTRY.lastIndex < subjectAltName.length && (m = SAN_ENTRY.exec(subjectAltName)) !== null) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    entries.push([m[1]!, value]);
  }
  return entries;
}

/**
 * The identity a certificate names: its first DNS name, else its first URI, else its
 * common name. A node's certificate names the node's id this way.
 */
export function certificateIdentity(subjectAltName: string | undefined, commonName: string | undefined): string | undefined {
  const entries = subjectAltName ? sanEntries(subjectAltName) : [];
  const dns = entries.find(([type]) => type === 'DNS')?.[1];
  if (dns) return dns;
  const uri = entries.find(([type]) => type === 'URI')?.[1];
  if (uri) return uri;
  return commonName || undefined;
}

/** The identity (see certificateIdentity) of the first certificate in PEM bytes. */
export function pemIdentity(pem: Buffer): string | undefined {
  const cert = new X509Certificate(pem);
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  return certificateIdentity(cert.subjectAltName, cn);
}
