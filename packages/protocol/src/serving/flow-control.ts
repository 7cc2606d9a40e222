// grpc-js's server has no option for its HTTP/2 flow-control windows, so every connection
// it accepts would receive with Node's default of 65,535 bytes: a large upload or a node's
// large result then crosses in 64 KiB window round trips. This raises them on each new
// connection: the per-stream initial window by SETTINGS, the connection's by WINDOW_UPDATE.
import type { Http2Server, Http2Session, Http2SecureServer } from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import { HTTP2_WINDOW_BYTES } from '../constants.js';

type Http2Listener = Http2Server | Http2SecureServer;

/** Raises the flow-control windows of one accepted HTTP/2 connection. */
export function raiseWindows(session: Http2Session, bytes = HTTP2_WINDOW_BYTES): void {
  if (session.destroyed) return;
  try {
    session.settings({ initialWindowSize: bytes });
    session.setLocalWindowSize(bytes);
  } catch {
    // The connection closed in between: nothing to raise.
  }
}

/**
 * Raises the windows of every connection the bound grpc-js server accepts from now on
 * (and of any it holds already). Call after bindAsync. grpc-js keeps its listeners in a
 * private map; false if a release renamed it (the server then works with 64 KiB windows,
 * and test/flow-control.test.ts, which reads the windows a raw client sees, fails).
 */
export function raiseServerWindows(server: Server, bytes = HTTP2_WINDOW_BYTES): boolean {
  const listeners = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) return false;
  for (const [listener, info] of listeners as Map<Http2Listener, unknown>) {
    if ((listener as { easyremoteWindows?: boolean }).easyremoteWindows) continue;
    (listener as { easyremoteWindows?: boolean }).easyremoteWindows = true;
    listener.on('session', (session: Http2Session) => raiseWindows(session, bytes));
    for (const session of (info as { sessions?: Set<Http2Session> }).sessions ?? []) raiseWindows(session, bytes);
  }
  return true;
}
