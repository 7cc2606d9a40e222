// Checks every RPC on its headers, before grpc-js reads a byte of its messages: the
// caller's token, and the encoding. grpc-js decompresses a request as soon as it is read
// (up to the full message limit), so a 64 KiB gzip bomb would cost tens of MiB of memory
// before any handler could look at it; refusing compressed requests outright, and
// unauthenticated callers before reading, keeps that cost at zero.
import * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEY, InvalidArgument, toServiceError, type EasyRemoteError } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';

const NODE_LINK_PREFIX = '/easyremote.v1.NodeLink/';

/** Told about calls refused here, before their request was read. */
export type IntakeRefusal = (path: string, peer: string, err: EasyRemoteError) => void;

/** The request's grpc-encoding (grpc-js keeps it on the call it hands the first interceptor). */
function requestEncoding(call: grpc.ServerInterceptingCallInterface): string {
  const encoding = (call as { incomingEncoding?: unknown }).incomingEncoding;
  return typeof encoding === 'string' ? encoding : 'identity';
}

function headerString(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

export function intakeInterceptor(auth: Authenticator, refused: IntakeRefusal): grpc.ServerInterceptor {
  const check = (path: string, metadata: grpc.Metadata, encoding: string): EasyRemoteError | undefined => {
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
            const err = check(method.path, metadata, requestEncoding(call));
            if (err === undefined) return pass(metadata);
            refused(method.path, call.getPeer(), err);
            // Not passing the metadata on means the handler never starts and never reads.
            call.sendStatus(toServiceError(err) as grpc.StatusObject);
          },
        }),
    });
}
