// grpc-js's server has no option for its HTTP/2 flow-control windows, so every connection
// it accepts would receive with Node's default of 65,535 bytes: a large upload or a node's
// large result then crosses in 64 KiB window round trips. This raises them on each new
// connection: the per-stream initial window by SETTINGS, the connection's by WINDOW_UPDATE.
import type { Http2Server, Http2Session, Http2SecureServer } from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import { HTTP2_WINDOW_BYTES } from '../constants.js';

type Http2Listener = Http2Server | Http2SecureServer;

/** Raises the flow-control windows of one accepted HTTP/2 connection. */
function raiseWindows(session: Http2Session): void {
  if (session.destroyed) return;
  try {
    session.settings({ initialWindowSize: HTTP2_WINDOW_BYTES });
    session.setLocalWindowSize(HTTP2_WINDOW_BYTES);
  } catch {
    // The connection closed in between: nothing to raise.
  }
}

/**
 * Raises the windows of every connection the bound grpc-js server accepts from now on
 * (and of any it holds already). Call once, after bindAsync. grpc-js keeps its listeners in a
 * private map; false if a release renamed it (the server then works with 64 KiB windows,
 * and test/flow-control.test.ts, which reads the windows a raw client sees, fails).
 */
export function raiseServerWindows(server: Server): boolean {
  const listeners = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) return false;
  for (const [listener, info] of listeners as Map<Http2Listener, unknown>) {
    listener.on('session', raiseWindows);
    for (const session of (info as { sessions?: Set<Http2Session> }).sessions ?? []) raiseWindows(session);
  }
  return true;
}
