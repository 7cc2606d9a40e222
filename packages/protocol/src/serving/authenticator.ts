// Who is calling: every token check, for every transport (node streams, calls, sessions,
// the Admin service and the HTTP API), resolves a token to a named principal.
//
// A presented token is never compared with a configured one character by character: it
// is hashed (SHA-256) and the digest looked up, then confirmed with a constant-time
// comparison, so the time taken says nothing about how much of a token was right, and a
// configuration may hold only digests.
import { createHash, timingSafeEqual } from 'node:crypto';
import { PermissionDenied, Unauthenticated, type EasyRemoteError } from '../errors.js';
import { ANONYMOUS, checkPrincipals, Principal, type PrincipalConfig } from './principals.js';

export interface AuthOptions {
  /** Named principals with their tokens (or token digests), roles, allowed names and limits. */
  principals?: PrincipalConfig[];
  /** Shorthand: node principals named node-1, node-2, ... that may register any node id. */
  nodeTokens?: string[];
  /** Shorthand: client principals named client-1, client-2, ... (they may call any function, and not drain or invalidate). */
  clientTokens?: string[];
}

const BEARER = /^Bearer\s+(.+)$/i;

/** The token in an `authorization: Bearer <token>` value, if there is one. */
export function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return BEARER.exec(header.trim())?.[1];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export class Authenticator {
  private readonly byDigest = new Map<string, { digest: Buffer; principal: Principal }>();
  private readonly byName = new Map<string, Principal>();
  /** Nodes must present a node principal's token. */
  readonly nodesAuthenticate: boolean;
  /** Callers must present a client or admin principal's token. */
  readonly callersAuthenticate: boolean;

  constructor(options: AuthOptions = {}) {
    const configs: PrincipalConfig[] = [
      ...(options.principals ?? []),
      ...(options.nodeTokens ?? []).map((token, i): PrincipalConfig => ({ name: `node-${i + 1}`, token, role: 'node' })),
      ...(options.clientTokens ?? []).map((token, i): PrincipalConfig => ({ name: `client-${i + 1}`, token, role: 'client' })),
    ];
    checkPrincipals(configs);
    for (const c of configs) {
      const d = c.sha256 !== undefined ? Buffer.from(c.sha256, 'hex') : digest(c.token!);
      const key = d.toString('hex');
      if (this.byDigest.has(key)) throw new TypeError(`auth: ${c.name} has the same token as ${this.byDigest.get(key)!.principal.name}`);
      const principal = new Principal(c.name, c.role, c);
      this.byDigest.set(key, { digest: d, principal });
      this.byName.set(c.name, principal);
    }
    this.nodesAuthenticate = configs.some((c) => c.role === 'node');
    this.callersAuthenticate = configs.some((c) => c.role !== 'node');
  }

  /** Whether both nodes and callers must authenticate (required to listen beyond loopback). */
  get complete(): boolean {
    return this.nodesAuthenticate && this.callersAuthenticate;
  }

  /** A principal by name (what the intake interceptor passes on to handlers). */
  principal(name: string): Principal | undefined {
    return name === ANONYMOUS.name ? ANONYMOUS : this.byName.get(name);
  }

  private lookup(token: string): Principal | undefined {
    const d = digest(token);
    const found = this.byDigest.get(d.toString('hex'));
    return found !== undefined && timingSafeEqual(found.digest, d) ? found.principal : undefined;
  }

  /** A caller's principal, from its `authorization` value. */
  client(authorization: string | undefined): Principal | EasyRemoteError {
    if (!this.callersAuthenticate) return ANONYMOUS;
    const token = bearerOf(authorization);
    if (token === undefined) return new Unauthenticated('missing client token: send metadata authorization: Bearer <token>');
    const principal = this.lookup(token);
    if (principal === undefined) return new Unauthenticated('client token not accepted');
    if (!principal.callsFunctions) return new PermissionDenied(`${principal.name} is a node principal: it may register nodes, not call functions or use the admin API`);
    return principal;
  }

  /**
   * A node stream's principal, from its `authorization` value, checked before its first
   * frame is read: with node principals configured, a stream without a valid node token
   * never gets to send a frame.
   */
  nodeStream(authorization: string | undefined): Principal | EasyRemoteError {
    if (!this.nodesAuthenticate) return ANONYMOUS;
    const token = bearerOf(authorization);
    if (token === undefined) return new Unauthenticated("missing node token: send metadata authorization: Bearer <token> (NodeLink.Connect, and a backend's own LoadBalancer RPCs)");
    const principal = this.lookup(token);
    if (principal === undefined) return new Unauthenticated('node token not accepted');
    if (principal.role !== 'node') return new PermissionDenied(`${principal.name} is a ${principal.role} principal: only node principals register nodes`);
    return principal;
  }

  /** A register frame's token, when it names one: it must be the stream's own principal's. */
  registerToken(token: string, stream: Principal): EasyRemoteError | undefined {
    if (token === '' || !this.nodesAuthenticate) return undefined;
    const principal = this.lookup(token);
    if (principal === undefined) return new Unauthenticated('node token not accepted');
    return principal === stream ? undefined : new Unauthenticated(`the register frame's token is not the stream's (${stream.name})`);
  }
}
