// Adapters from the dispatcher's CallSink to grpc-js server calls.
import type * as grpc from '@grpc/grpc-js';
import { joinParts, toServiceError, type CallReply, type EasyRemoteError, type StreamReply } from '@easyremote/protocol';
import type { CallSink } from '../calls/call-sink.js';

export function unarySink(callback: grpc.sendUnaryData<CallReply>): CallSink {
  const parts: Buffer[] = [];
  return {
    result: (payload, nodeId, cached) => callback(null, { result: joinParts(parts, payload), nodeId, cached }),
    resultPart: (data) => (parts.push(data), true),
    chunk: () => true,
    progress: () => undefined,
    end: () => callback(null, { result: Buffer.alloc(0), nodeId: '', cached: false }),
    error: (err: EasyRemoteError) => callback(toServiceError(err) as grpc.ServiceError),
    onDrain: () => undefined,
  };
}

/**
 * Ends a server stream with an error status and the error trailer. grpc-js sends a
 * status only through the stream's 'error' event; `destroy()` would reset the HTTP/2
 * stream with no status at all, leaving the caller to wait for its own deadline.
 */
export function failStream(call: grpc.ServerWritableStream<unknown, StreamReply>, err: EasyRemoteError): void {
  call.emit('error', toServiceError(err));
}

export function streamSink(call: grpc.ServerWritableStream<unknown, StreamReply>): CallSink {
  let closed = false;
  const parts: Buffer[] = [];
  call.on('cancelled', () => (closed = true));
  return {
    result: (payload) => {
      if (closed) return;
      call.write({ result: joinParts(parts, payload) });
      call.end();
    },
    resultPart: (data) => (parts.push(data), true),
    chunk: (payload) => (closed ? true : call.write({ chunk: payload })),
    progress: (fraction, message) => {
      if (!closed) call.write({ progress: { fraction, message } });
    },
    end: () => {
      if (!closed) call.end();
    },
    error: (err) => {
      if (!closed) failStream(call, err);
    },
    onDrain: (listener) => {
      if (closed) return;
      call.once('drain', listener);
    },
  };
}
