// The gateway's gRPC server: message limits, keepalive, binding and shutdown.
import * as grpc from '@grpc/grpc-js';
import { ENVELOPE_SLACK_BYTES, KEEPALIVE_OPTIONS } from '@easyremote/protocol';

/** How long shutdown waits for in-flight RPCs before closing connections. */
export const SHUTDOWN_GRACE_MS = 1000;

export function createGrpcServer(maxPayloadBytes: number, interceptors: grpc.ServerInterceptor[]): grpc.Server {
  const limit = maxPayloadBytes + ENVELOPE_SLACK_BYTES;
  return new grpc.Server({
    interceptors,
    ...KEEPALIVE_OPTIONS,
    'grpc.max_receive_message_length': limit,
    'grpc.max_send_message_length': limit,
    // Nodes and clients ping every 10 s; allow it.
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
}

/** Listens on host:port (0 = any free port); resolves with the port bound. */
export function bindGrpcServer(server: grpc.Server, host: string, port: number): Promise<number> {
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostPart}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
}

/** Lets in-flight RPCs finish for up to `graceMs`, then closes every connection. */
export function shutdownGrpcServer(server: grpc.Server, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
