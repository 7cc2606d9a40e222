// Who may do what: named principals, each with a token (or only the token's SHA-256, so
// a configuration file need not hold secrets), a role, the node ids or functions it is
// allowed, and its own limits. The name is what logs, call rows and handlers see; the
// token never leaves the authenticator.
import { createHash } from 'node:crypto';

export type Role = 'node' | 'client' | 'admin';

export interface PrincipalConfig {
  /** Shown in logs, call rows, node events and to handlers (`currentCall().caller`). */
  name: string;
  /** The token itself... */
  token?: string;
  /** ...or its SHA-256, hex (what `easyremote hash-token` or `sha256sum` prints). */
  sha256?: string;
  /** node: registers nodes; client: calls functions and reads the admin API; admin: also drains nodes and invalidates caches. */
  role: Role;
  /** Node ids a node principal may register, `*` matching any run of characters (default: any). */
  nodeIds?: string[];
  /** Functions a client or admin principal may call, `*` as above (default: any). */
  functions?: string[];
  /** Calls this principal may have in flight at once (default: unlimited). */
  maxConcurrent?: number;
  /** Calls per second this principal may start, with bursts up to one second's worth (default: unlimited). */
  callsPerSecond?: number;
}

/** Matches a name against `*` patterns, compiled once. */
function matcher(patterns: readonly string[] | undefined): (name: string) => boolean {
  if (patterns === undefined) return () => true;
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (name) => res.some((re) => re.test(name));
}

export class Principal {
  readonly mayRegister: (nodeId: string) => boolean;
  readonly mayCall: (functionName: string) => boolean;

  constructor(
    readonly name: string,
    readonly role: Role,
    readonly config: Pick<PrincipalConfig, 'nodeIds' | 'functions' | 'maxConcurrent' | 'callsPerSecond'> = {},
  ) {
    this.mayRegister = matcher(config.nodeIds);
    this.mayCall = matcher(config.functions);
  }

  /** The name call rows, Invoke.caller and currentCall().caller carry: '' for the anonymous principal. */
  get callerName(): string {
    return this === ANONYMOUS ? '' : this.name;
  }

  /** Operator actions (drain, cache invalidation): the admin role only. */
  get mayOperate(): boolean {
    return this.role === 'admin';
  }

  get callsFunctions(): boolean {
    return this.role === 'client' || this.role === 'admin';
  }

  get isLimited(): boolean {
    return this.config.maxConcurrent !== undefined || this.config.callsPerSecond !== undefined;
  }
}

/** Everyone, when a gateway has no authentication for that side (loopback by default). */
export const ANONYMOUS = new Principal('anonymous', 'admin');

export function sha256Hex(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Checks a principal list; throws TypeError naming the entry and what is wrong. */
export function checkPrincipals(list: readonly PrincipalConfig[]): void {
  const names = new Set<string>();
  list.forEach((p, i) => {
    const where = `auth.principals[${i}]${typeof p?.name === 'string' ? ` (${p.name})` : ''}`;
    if (typeof p !== 'object' || p === null) throw new TypeError(`${where}: must be an object`);
    if (typeof p.name !== 'string' || !/^[A-Za-z0-9_.:@-]{1,128}$/.test(p.name)) throw new TypeError(`${where}: name must be 1-128 of letters, digits and _ . : @ -`);
    if (names.has(p.name)) throw new TypeError(`${where}: the name ${p.name} is used twice`);
    names.add(p.name);
    if (p.role !== 'node' && p.role !== 'client' && p.role !== 'admin') throw new TypeError(`${where}: role must be node, client or admin`);
    if ((p.token === undefined) === (p.sha256 === undefined)) throw new TypeError(`${where}: give exactly one of token and sha256`);
    if (p.token !== undefined && (typeof p.token !== 'string' || p.token.length < 8)) throw new TypeError(`${where}: token must be a string of at least 8 characters`);
    if (p.sha256 !== undefined && (typeof p.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(p.sha256))) throw new TypeError(`${where}: sha256 must be 64 hex digits`);
    for (const key of ['nodeIds', 'functions'] as const) {
      const v = p[key];
      if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.length === 0))) throw new TypeError(`${where}: ${key} must be a list of non-empty patterns`);
    }
    for (const key of ['maxConcurrent', 'callsPerSecond'] as const) {
      const v = p[key];
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new TypeError(`${where}: ${key} must be a number > 0`);
    }
  });
}
