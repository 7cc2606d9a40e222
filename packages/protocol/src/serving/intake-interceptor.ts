// Checks every RPC on its headers, before grpc-js reads a byte of its messages: the
// caller's token, and the encoding. grpc-js decompresses a request as soon as it is read
// (up to the full message limit), so a 64 KiB gzip bomb would cost tens of MiB of memory
// before any handler could look at it; refusing compressed requests outright, and
// unauthenticated callers before reading, keeps that cost at zero. The gateway and a node
// serving calls directly put the same interceptor in front of their services; what
// authenticates whom is theirs to say.
import { constants as http2constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEY } from '../constants.js';
import { InvalidArgument, toServiceError, type EasyRemoteError } from '../errors.js';
import { PRINCIPAL_METADATA_KEY } from './call-metadata.js';
import { Principal } from './principals.js';

/** Told about calls refused here, before their request was read. */
export type IntakeRefusal = (path: string, peer: string, err: EasyRemoteError) => void;

/** The RPC being admitted, as an authentication rule sees it. */
export interface IntakeRequest {
  /** The method path, e.g. /easyremote.v1.Gateway/Call. */
  readonly path: string;
  /** The `authorization` header's value, if any. */
  readonly authorization: string | undefined;
  /** The TLS peer, for rules that read a client certificate. */
  authContext(): ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>;
}

/** Who the RPC's caller is, or why it may not go on. */
export type IntakeAuthentication = (request: IntakeRequest) => Principal | EasyRemoteError;

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

export function intakeInterceptor(authenticate: IntakeAuthentication, refused: IntakeRefusal = () => undefined): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const encoding = requestEncoding(call);
            const checked =
              encoding !== 'identity'
                ? new InvalidArgument(`compressed requests are not accepted (grpc-encoding ${encoding.slice(0, 32)}); send them uncompressed`)
                : authenticate({ path: method.path, authorization: headerString(metadata, AUTH_METADATA_KEY), authContext: () => call.getAuthContext() });
            if (checked instanceof Principal) {
              // Handlers learn who called from here, never from anything the caller sent.
              metadata.set(PRINCIPAL_METADATA_KEY, checked.name);
              return pass(metadata);
            }
            refused(method.path, call.getPeer(), checked);
            // Not passing the metadata on means the handler never starts and never reads.
            call.sendStatus(toServiceError(checked) as grpc.StatusObject);
            stopReceiving(call);
          },
        }),
    });
}
