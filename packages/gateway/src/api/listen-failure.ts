// A port the gateway cannot listen on, said in one line: which port, which listener, and
// for a port in use, who holds it. grpc-js reports a failed bind as a multi-line list of
// every address it tried; an operator needs the port and the culprit.
import { createServer } from 'node:net';
import { findPortOwner, type PortOwner } from './port-owner.js';

export type Listener = 'gRPC' | 'HTTP';

/** The gateway's start failed because another socket listens on its port. */
export class PortInUseError extends Error {
  readonly code = 'EADDRINUSE';

  constructor(
    readonly port: number,
    readonly host: string,
    readonly listener: Listener,
    /** The process holding the port, when /proc could tell. */
    readonly owner: PortOwner | undefined,
  ) {
    super(`port ${port} (${listener}) on ${host} is already in use by ${describeOwner(owner)}`);
    this.name = 'PortInUseError';
  }
}

function describeOwner(owner: PortOwner | undefined): string {
  if (owner === undefined) return 'another process';
  if (owner.pid === process.pid) return `this process (pid ${owner.pid})`;
  return owner.command === '' ? `pid ${owner.pid}` : `pid ${owner.pid} (${owner.command})`;
}

const EXPLAINED: Record<string, string> = {
  EADDRNOTAVAIL: 'no interface of this machine has that address',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/** Any error from listening, as one line naming the port and the listener. */
export function listenFailure(err: unknown, port: number, host: string, listener: Listener): Error {
  if (err instanceof PortInUseError) return err;
  const e = err as NodeJS.ErrnoException;
  const text = String(e?.message ?? err);
  const code = typeof e?.code === 'string' ? e.code : /\b(E[A-Z_]{3,})\b/.exec(text)?.[1];
  if (code === 'EADDRINUSE') return new PortInUseError(port, host, listener, findPortOwner(port));
  const why = (code && EXPLAINED[code]) ?? (/errors: \[(.+)\]$/s.exec(text)?.[1] ?? text).split('\n')[0];
  return new Error(`cannot listen on ${host} port ${port} (${listener}): ${why}${code && EXPLAINED[code] ? ` (${code})` : ''}`, { cause: err });
}

/**
 * Fails with the one-line error when the port is taken, before grpc-js tries it: its own
 * failure also prints a line to stderr that the caller cannot suppress.
 */
export function checkPortFree(port: number, host: string, listener: Listener): Promise<void> {
  if (port === 0) return Promise.resolve();
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => reject(listenFailure(err, port, host, listener)));
    probe.listen({ port, host: bare, exclusive: true }, () => probe.close(() => resolve()));
  });
}
