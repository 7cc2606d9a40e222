// Checks every RPC on its headers, before grpc-js reads a byte of its messages: the
// caller's token, and the encoding. grpc-js decompresses a request as soon as it is read
// (up to the full message limit), so a 64 KiB gzip bomb would cost tens of MiB of memory
// before any handler could look at it; refusing compressed requests outright, and
// unauthenticated callers before reading, keeps that cost at zero.
// Where nodes must present a certificate, a node stream without one is refused here too.
import { constants as http2constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEY, InvalidArgument, toServiceError, type EasyRemoteError } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import { Principal } from '../auth/principals.js';
import { PRINCIPAL_METADATA_KEY } from './metadata.js';

const NODE_LINK_PREFIX = '/easyremote.v1.NodeLink/';

/** Told about calls refused here, before their request was read. */
export type IntakeRefusal = (path: string, peer: string, err: EasyRemoteError) => void;

/** The request's grpc-encoding (grpc-js keeps it on the call it hands the first interceptor). */
function requestEncoding(call: grpc.ServerInterceptingCallInterface): string {
  const encoding = (call as { incomingEncoding?: unknown }).incomingEncoding;
  return typeof encoding === 'string' ? encoding : 'identity';
}

/**
 * After a refusal sent before the request was read, asks the client to stop sending the
 * rest of it (RST_STREAM with NO_ERROR once the response is out, as RFC 9113 §8.1 allows).
 * Node does this itself for a response sent before any read, but not for a stream paused
 * explicitly, as grpc-js pauses every request: without it HTTP/2 goes on accepting the
 * unread body into native buffers, the whole body (32 MiB, say) for each such request.
 */
function stopReceiving(call: grpc.ServerInterceptingCallInterface): void {
  // grpc-js keeps the HTTP/2 stream on the call it hands the first interceptor.
  const stream = (call as { stream?: ServerHttp2Stream }).stream;
  if (typeof stream?.close !== 'function') return;
  const close = () =>
    setImmediate(() => {
      if (!stream.closed) stream.close(http2constants.NGHTTP2_NO_ERROR);
    });
  if (stream.writableFinished) close();
  else stream.once('finish', close);
}

function headerString(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** Checks a node stream's TLS peer (a required client certificate); undefined when it may go on. */
export type NodeCertificateCheck = (context: ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>) => EasyRemoteError | undefined;

export function intakeInterceptor(auth: Authenticator, refused: IntakeRefusal, nodeCertificate?: NodeCertificateCheck): grpc.ServerInterceptor {
  const check = (path: string, metadata: grpc.Metadata, encoding: string): Principal | EasyRemoteError => {
    if (encoding !== 'identity') {
      return new InvalidArgument(`compressed requests are not accepted (grpc-encoding ${encoding.slice(0, 32)}); send them uncompressed`);
    }
    const authorization = headerString(metadata, AUTH_METADATA_KEY);
    return path.startsWith(NODE_LINK_PREFIX) ? auth.nodeStream(authorization) : auth.client(authorization);
  };
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const checked = check(method.path, metadata, requestEncoding(call));
            const certificateProblem = checked instanceof Principal && method.path.startsWith(NODE_LINK_PREFIX) ? nodeCertificate?.(call.getAuthContext()) : undefined;
            if (checked instanceof Principal && certificateProblem === undefined) {
              // Handlers learn who called from here, never from anything the caller sent.
              metadata.set(PRINCIPAL_METADATA_KEY, checked.name);
              return pass(metadata);
            }
            const err = certificateProblem ?? (checked as EasyRemoteError);
            refused(method.path, call.getPeer(), err);
            // Not passing the metadata on means the handler never starts and never reads.
            call.sendStatus(toServiceError(err) as grpc.StatusObject);
            stopReceiving(call);
          },
        }),
    });
}
