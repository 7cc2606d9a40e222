// The Gateway service's per-call methods, Call (unary) and CallStream (server
// streaming): one HTTP/2 stream per call, for any gRPC client in any language.
import type * as grpc from '@grpc/grpc-js';
import { ASSUME_IDEMPOTENT_METADATA_KEY, clip, DEADLINE_GRACE_METADATA_KEY, idempotentHeaderTeller, InvalidArgument, isUndecodable, MAX_QUOTED_CHARS, type CallReply, type CallRequest, type StreamReply, type Undecodable } from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import type { CallIntake, IncomingCall } from './call-intake.js';
import { failStream, streamSink, unarySink } from './call-sinks.js';
import type { Authenticator } from '../auth/authenticator.js';
import { callerMetadata, metadataString, principalOf } from './metadata.js';
import type { MetricsRecorder } from '../metrics/recorder.js';

type GrpcCall = grpc.ServerUnaryCall<CallRequest, unknown> | grpc.ServerWritableStream<CallRequest, unknown>;

function incoming(call: GrpcCall, streaming: boolean, clock: Clock, auth: Authenticator): IncomingCall {
  const req = call.request;
  const deadline = call.getDeadline();
  return {
    function: req.function,
    args: req.args,
    options: req.options,
    metadata: callerMetadata(call.metadata),
    callerDeadlineMs: deadline instanceof Date ? deadline.getTime() : deadline,
    graceHeader: metadataString(call.metadata, DEADLINE_GRACE_METADATA_KEY),
    streaming,
    client: call.getPeer(),
    caller: principalOf(call.metadata, auth),
    arrivedAt: clock.now(),
    assumeIdempotent: metadataString(call.metadata, ASSUME_IDEMPOTENT_METADATA_KEY) === '1',
    // Headers before the call is routed: a client that sees them knows the gateway took it in.
    onFunction: idempotentHeaderTeller(call),
  };
}

/** Bytes that are not a CallRequest: INVALID_ARGUMENT with the trailer, like any bad request, and a row. */
function undecodable(call: grpc.ServerUnaryCall<Undecodable, unknown> | grpc.ServerWritableStream<Undecodable, unknown>, metrics: MetricsRecorder, clock: Clock): InvalidArgument {
  const err = new InvalidArgument(`the request is not a CallRequest: ${clip(call.request.undecodable, MAX_QUOTED_CHARS)}`);
  metrics.refused({ functionName: '', client: call.getPeer(), requestBytes: 0, arrivedAt: clock.now() }, err.code);
  return err;
}

export function callServiceHandlers(intake: CallIntake, clock: Clock, auth: Authenticator, metrics: MetricsRecorder): grpc.UntypedServiceImplementation {
  return {
    call: (call: grpc.ServerUnaryCall<CallRequest | Undecodable, CallReply>, callback: grpc.sendUnaryData<CallReply>) => {
      if (isUndecodable(call.request)) return unarySink(callback).error(undecodable(call as grpc.ServerUnaryCall<Undecodable, unknown>, metrics, clock));
      const admitted = intake.admit(incoming(call as GrpcCall, false, clock, auth), unarySink(callback));
      call.on('cancelled', () => admitted.cancel());
    },
    callStream: (call: grpc.ServerWritableStream<CallRequest | Undecodable, StreamReply>) => {
      if (isUndecodable(call.request)) return failStream(call, undecodable(call as grpc.ServerWritableStream<Undecodable, unknown>, metrics, clock));
      const admitted = intake.admit(incoming(call as GrpcCall, true, clock, auth), streamSink(call));
      call.on('cancelled', () => admitted.cancel());
    },
  };
}
