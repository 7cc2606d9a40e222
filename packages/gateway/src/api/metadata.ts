import type * as grpc from '@grpc/grpc-js';

const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Transport headers and credentials never reach a handler. */
function isPrivate(key: string): boolean {
  return key.startsWith('grpc-') || key === 'x-easyremote-deadline-grace-ms' || key.startsWith(':') || key === 'authorization' || key === 'user-agent' || key === 'content-type' || key === 'te' || key.endsWith('-bin');
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

export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const raw = metadata.get('authorization')[0];
  if (typeof raw !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(raw.trim());
  return m ? m[1] : undefined;
}
