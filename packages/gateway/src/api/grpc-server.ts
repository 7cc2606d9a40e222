// The gateway's gRPC server: message limits, keepalive, TLS, binding and shutdown.
import * as grpc from '@grpc/grpc-js';
import { ENVELOPE_SLACK_BYTES, KEEPALIVE_OPTIONS, raiseServerWindows } from '@easyremote/protocol';
import type { CertificateFiles } from '../tls/certificate-files.js';
import { checkPortFree, listenFailure } from './listen-failure.js';

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

/**
 * TLS from the gateway's certificate files, following them as they are reloaded. With a
 * client CA, client certificates are asked for and verified but never required (clients
 * have none): a call learns whether its peer's was verified from its auth context.
 */
export function tlsCredentials(files: CertificateFiles): grpc.ServerCredentials {
  // grpc-js passes its first argument on as the identity provider and its second as the
  // CA provider, whatever its declarations call them.
  return grpc.experimental.createCertificateProviderServerCredentials(files, files.paths.clientCa === undefined ? null : files, false);
}

/** Listens on host:port (0 = any free port), with HTTP/2 windows of HTTP2_WINDOW_BYTES; resolves with the port bound, or fails with one line naming the port. */
export async function bindGrpcServer(server: grpc.Server, host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  await checkPortFree(port, host, 'gRPC');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostPart}:${port}`, credentials, (err, p) => {
      if (err) return reject(listenFailure(err, port, host, 'gRPC'));
      raiseServerWindows(server);
      resolve(p);
    }),
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
