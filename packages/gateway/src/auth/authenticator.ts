// Who may register nodes and who may call: tokens checked in one place, for every
// transport (node streams, calls, the Admin service and the HTTP API).
import { createHash, timingSafeEqual } from 'node:crypto';
import { EasyRemoteError, Unauthenticated } from '@easyremote/protocol';

export interface AuthOptions {
  /** Tokens nodes must present in the register frame (or as `authorization: Bearer`). */
  nodeTokens?: string[];
  /** Tokens clients must present as `authorization: Bearer <token>`. */
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

/** Compares digests in constant time, so the time taken says nothing about a token. */
function matchesAny(token: string, digests: readonly Buffer[]): boolean {
  const d = digest(token);
  let found = false;
  for (const candidate of digests) found = timingSafeEqual(d, candidate) || found;
  return found;
}

export class Authenticator {
  private readonly nodeDigests: Buffer[];
  private readonly clientDigests: Buffer[];

  constructor(options: AuthOptions = {}) {
    this.nodeDigests = (options.nodeTokens ?? []).map(digest);
    this.clientDigests = (options.clientTokens ?? []).map(digest);
  }

  /** Whether both nodes and clients must authenticate (required to listen beyond loopback). */
  get complete(): boolean {
    return this.nodeDigests.length > 0 && this.clientDigests.length > 0;
  }

  /** Whether nodes must present a token. */
  get nodesAuthenticated(): boolean {
    return this.nodeDigests.length > 0;
  }

  /** Whether clients must present a token. */
  get clientsAuthenticated(): boolean {
    return this.clientDigests.length > 0;
  }

  /** A client's `authorization` value; undefined when it may call. */
  client(authorization: string | undefined): EasyRemoteError | undefined {
    if (this.clientDigests.length === 0) return undefined;
    const token = bearerOf(authorization);
    if (token === undefined) return new Unauthenticated('missing client token: send metadata authorization: Bearer <token>');
    return matchesAny(token, this.clientDigests) ? undefined : new Unauthenticated('client token not accepted');
  }

  /**
   * A node stream's `authorization` value, checked before its first frame is read: with
   * node tokens configured, a stream without a valid one never gets to send a frame.
   */
  nodeStream(authorization: string | undefined): EasyRemoteError | undefined {
    if (this.nodeDigests.length === 0) return undefined;
    const token = bearerOf(authorization);
    if (token === undefined) return new Unauthenticated('missing node token: send metadata authorization: Bearer <token> on NodeLink.Connect');
    return matchesAny(token, this.nodeDigests) ? undefined : new Unauthenticated('node token not accepted');
  }

  /** A node's token from its register frame, else its `authorization` value. */
  node(registerToken: string, authorization: string | undefined): EasyRemoteError | undefined {
    if (this.nodeDigests.length === 0) return undefined;
    const token = registerToken || bearerOf(authorization);
    if (!token) return new Unauthenticated('missing node token');
    return matchesAny(token, this.nodeDigests) ? undefined : new Unauthenticated('node token not accepted');
  }
}
