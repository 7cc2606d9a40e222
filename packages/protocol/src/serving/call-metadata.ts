// Call metadata as handlers see it, and the principal the intake interceptor passed on:
// the same rules wherever a call arrives (the gateway, or a node serving it directly).
import type * as grpc from '@grpc/grpc-js';
import { ASSUME_IDEMPOTENT_METADATA_KEY, AUTH_METADATA_KEY, DEADLINE_GRACE_METADATA_KEY } from '../constants.js';
import type { Authenticator } from './authenticator.js';
import { ANONYMOUS, type Principal } from './principals.js';

const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * The principal the intake interceptor authenticated, as it passes it on to handlers.
 * Set by the server alone: whatever a caller sends under this key is removed first.
 */
export const PRINCIPAL_METADATA_KEY = 'x-easyremote-principal';

/** Transport headers and credentials never reach a handler. */
function isPrivate(key: string): boolean {
  return (
    key.startsWith('grpc-') ||
    key === DEADLINE_GRACE_METADATA_KEY ||
    key === ASSUME_IDEMPOTENT_METADATA_KEY ||
    key === PRINCIPAL_METADATA_KEY ||
    key.startsWith(':') ||
    key === AUTH_METADATA_KEY ||
    key === 'user-agent' ||
    key === 'content-type' ||
    key === 'te' ||
    key.endsWith('-bin')
  );
}

/** The caller's string metadata, as handlers see it. */
export function callerMetadata(metadata: grpc.Metadata): Record<string, string> {
  const map = metadata.getMap();
  let out: Record<string, string> | undefined;
  for (const key in map) {
    const value = map[key];
    if (typeof value !== 'string' || isPrivate(key)) continue;
    (out ??= {})[key] = value;
  }
  return out ?? EMPTY;
}

/** A session call's metadata map, as handlers see it (the same keys are withheld). */
export function handlerMetadata(map: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const key in map) {
    if (isPrivate(key)) continue;
    (out ??= {})[key] = map[key]!;
  }
  return out ?? EMPTY;
}

/** The principal the intake interceptor authenticated for this RPC. */
export function principalOf(metadata: grpc.Metadata, auth: Authenticator): Principal {
  const name = metadataString(metadata, PRINCIPAL_METADATA_KEY);
  // The interceptor runs on every RPC: without its mark the call came some other way (a test).
  return (name !== undefined ? auth.principal(name) : undefined) ?? ANONYMOUS;
}

/** The first string value of a metadata key. */
export function metadataString(metadata: grpc.Metadata, key: string): string | undefined {
  const raw = metadata.get(key)[0];
  return typeof raw === 'string' ? raw : undefined;
}
