// Gateway.Call and Gateway.CallStream served by the node itself: one HTTP/2 stream per
// call, for any gRPC client, with the gateway's semantics (proto/README.md, "Calling a
// function"). Each RPC is a DirectLink of its own to the node's CallRunner.
import type * as grpc from '@grpc/grpc-js';
import {
  joinParts,
  ASSUME_IDEMPOTENT_METADATA_KEY,
  callerMetadata,
  clip,
  InvalidArgument,
  isUndecodable,
  MAX_QUOTED_CHARS,
  DEADLINE_GRACE_METADATA_KEY,
  DEFAULT_STREAM_CREDIT,
  errorFromDetail,
  idempotentHeaderTeller,
  metadataString,
  PAYLOAD_PART_CREDIT,
  principalOf,
  toServiceError,
  type Authenticator,
  type CallReply,
  type CallRequest,
  type ErrorDetail,
  type StreamReply,
  type Undecodable,
} from '@easyremote/protocol';
import type { DirectIntake, DirectRequest } from './direct-intake.js';
import { DirectLink } from './direct-link.js';

/** Result parts (or chunks) taken before their credit goes back to the runner. */
const CREDIT_BATCH = PAYLOAD_PART_CREDIT >> 1;

type GrpcCall = grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>;

function request(call: GrpcCall, streaming: boolean, auth: Authenticator): DirectRequest {
  const req = call.request;
  const deadline = call.getDeadline();
  return {
    function: req.function,
    args: req.args,
    argsSize: 0,
    options: req.options,
    metadata: callerMetadata(call.metadata),
    callerDeadlineMs: deadline instanceof Date ? deadline.getTime() : deadline,
    graceHeader: metadataString(call.metadata, DEADLINE_GRACE_METADATA_KEY),
    exactDeadline: false,
    streaming,
    wantProgress: streaming,
    initialCredit: streaming ? DEFAULT_STREAM_CREDIT : PAYLOAD_PART_CREDIT,
    caller: principalOf(call.metadata, auth),
    assumeIdempotent: metadataString(call.metadata, ASSUME_IDEMPOTENT_METADATA_KEY) === '1',
    onFunction: idempotentHeaderTeller(call),
  };
}

function serviceError(detail: ErrorDetail): grpc.ServiceError {
  return toServiceError(errorFromDetail(detail)) as grpc.ServiceError;
}

/** Bytes that are not a CallRequest: INVALID_ARGUMENT with the trailer, as the gateway answers them. */
function undecodable(request: Undecodable): grpc.ServiceError {
  return toServiceError(new InvalidArgument(`the request is not a CallRequest: ${clip(request.undecodable, MAX_QUOTED_CHARS)}`)) as grpc.ServiceError;
}

export function directRpcHandlers(intake: DirectIntake, auth: Authenticator, maxPayloadBytes: number): Pick<grpc.UntypedServiceImplementation, 'call' | 'callStream'> {
  return {
    call: (call: grpc.ServerUnaryCall<CallRequest | Undecodable, CallReply>, callback: grpc.sendUnaryData<CallReply>) => {
      if (isUndecodable(call.request)) return callback(undecodable(call.request));
      const link = new DirectLink(maxPayloadBytes, () => false);
      const parts: Buffer[] = [];
      let owed = 0;
      // A per-call RPC answers with one message: parts are gathered, their credit returned at once.
      const direct = intake.start(link, request(call as GrpcCall, false, auth), {
        result: (payload) => callback(null, { result: joinParts(parts, payload), nodeId: intake.nodeId, cached: false }),
        resultPart: (data) => {
          parts.push(data);
          if (++owed >= CREDIT_BATCH) {
            const n = owed;
            owed = 0;
            queueMicrotask(() => direct?.credit(n));
          }
          return true;
        },
        chunk: () => true,
        end: () => callback(null, { result: Buffer.alloc(0), nodeId: intake.nodeId, cached: false }),
        error: (detail) => callback(serviceError(detail)),
        progress: () => undefined,
      });
      call.on('cancelled', () => {
        direct?.cancel();
        intake.linkClosed(link);
      });
    },
    callStream: (call: grpc.ServerWritableStream<CallRequest | Undecodable, StreamReply>) => {
      if (isUndecodable(call.request)) return void call.emit('error', undecodable(call.request));
      const link = new DirectLink(maxPayloadBytes, () => call.writableNeedDrain);
      let closed = false;
      const parts: Buffer[] = [];
      let owed = 0;
      let waiting = false;
      // Credit goes back as the client's stream takes chunks: a slow reader holds the handler back.
      const grant = () => {
        if (owed === 0 || closed) return;
        const n = owed;
        owed = 0;
        direct?.credit(n);
      };
      const took = (written: boolean) => {
        owed++;
        if (!written && !waiting) {
          waiting = true;
          call.once('drain', () => {
            waiting = false;
            link.drained();
            grant();
          });
        } else if (!waiting && owed >= CREDIT_BATCH) queueMicrotask(grant);
        return written;
      };
      const direct = intake.start(link, request(call as GrpcCall, true, auth), {
        result: (payload) => {
          if (closed) return;
          call.write({ result: joinParts(parts, payload) });
          call.end();
        },
        resultPart: (data) => (parts.push(data), took(true)),
        chunk: (payload) => (closed ? true : took(call.write({ chunk: payload }))),
        end: () => {
          if (!closed) call.end();
        },
        // grpc-js sends a status only through the stream's 'error' event.
        error: (detail) => {
          if (!closed) call.emit('error', serviceError(detail));
        },
        progress: (fraction, message) => {
          if (!closed) call.write({ progress: { fraction, message } });
        },
      });
      call.on('cancelled', () => {
        closed = true;
        direct?.cancel();
        intake.linkClosed(link);
      });
    },
  };
}
