// The gateways a client or a node is given, as the channels it opens: a list of host:port
// addresses, where a name that resolves to several addresses of one family (a DNS
// round-robin record for a fleet of gateways) stands for each of them. A name resolving
// to one address, or to one IPv4 and one IPv6 address (`localhost`), stays one gateway
// that grpc-js resolves itself, so a plain single-gateway setup opens one channel.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

/** A resolved address: the text form and its family (4 or 6), as `dns.lookup` gives them. */
export interface LookedUpAddress {
  readonly address: string;
  readonly family: number;
}

/** Every address a host name resolves to. */
export type AddressLookup = (host: string) => Promise<readonly LookedUpAddress[]>;

/** The system resolver (`/etc/hosts`, then DNS), every address in the order it gives them. */
export const systemLookup: AddressLookup = (host) => dns.lookup(host, { all: true, verbatim: true });

/** One gateway as a channel dials it. */
export interface GatewayTarget {
  /** host:port the channel dials (an IP address when a name was expanded). */
  readonly address: string;
  /** The name it came from, when it was expanded: what TLS verifies and `:authority` carries. */
  readonly name?: string;
  /** The address as it was given (the name:port for an expanded one). */
  readonly given: string;
}

/** host and port of `host:port` or `[ipv6]:port`; undefined for anything else (a `dns:`/`unix:` target). */
export function splitHostPort(address: string): { host: string; port: string } | undefined {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(address);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2]! };
  const plain = /^([^:/[\]]+):(\d+)$/.exec(address);
  return plain ? { host: plain[1]!, port: plain[2]! } : undefined;
}

function joinHostPort(host: string, port: string): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The gateways behind a list of addresses, in order, each address once. A name whose
 * lookup fails, or that does not resolve to several addresses of one family, is kept as
 * given. IPv4 addresses are preferred when a name has several of both families.
 */
export async function expandGatewayAddresses(addresses: readonly string[], lookup: AddressLookup = systemLookup): Promise<GatewayTarget[]> {
  const expanded = await Promise.all(addresses.map((given) => expandOne(given, lookup)));
  const seen = new Set<string>();
  const targets: GatewayTarget[] = [];
  for (const t of expanded.flat()) {
    if (seen.has(t.address)) continue;
    seen.add(t.address);
    targets.push(t);
  }
  return targets;
}

async function expandOne(given: string, lookup: AddressLookup): Promise<GatewayTarget[]> {
  const hp = splitHostPort(given);
  if (hp === undefined || isIP(hp.host) !== 0) return [{ address: given, given }];
  let found: readonly LookedUpAddress[];
  try {
    found = await lookup(hp.host);
  } catch {
    return [{ address: given, given }];
  }
  for (const family of [4, 6]) {
    const ips = [...new Set(found.filter((a) => a.family === family).map((a) => a.address))];
    if (ips.length >= 2) return ips.map((ip) => ({ address: joinHostPort(ip, hp.port), name: hp.host, given }));
  }
  return [{ address: given, given }];
}

/**
 * Channel options for a target: an expanded address still presents its name, as the
 * `:authority` header (virtual hosts, nginx) and, over TLS, as the name the gateway's
 * certificate is verified against (unless `tls.serverName` says otherwise).
 */
export function targetChannelOptions(target: GatewayTarget, secure: boolean, serverName: string | undefined): Record<string, string> {
  if (target.name === undefined) return {};
  const hp = splitHostPort(target.given)!;
  return {
    'grpc.default_authority': joinHostPort(target.name, hp.port),
    ...(secure && serverName === undefined ? { 'grpc.ssl_target_name_override': target.name } : {}),
  };
}
