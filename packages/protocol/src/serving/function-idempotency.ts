// How every server of the client-facing service tells a caller whether a function is
// idempotent (the gateway, and a node serving calls directly), so that a client with
// several places to send a call knows which calls it may send again: a Session's
// `SessionFunction` frame, a per-call RPC's `easyremote-idempotent` response header.
import * as grpc from '@grpc/grpc-js';
import { IDEMPOTENT_HEADER_KEY } from '../constants.js';
import type { ServerFrame } from '../generated/easyremote/v1/gateway.js';

/** One session's teller: a `SessionFunction` frame the first time a function is called on it, and again whenever the value changes. */
export function sessionFunctionTeller(push: (frame: ServerFrame) => void): (name: string, idempotent: boolean) => void {
  const told = new Map<string, boolean>();
  return (name, idempotent) => {
    if (told.get(name) === idempotent) return;
    told.set(name, idempotent);
    push({ functionInfo: { function: name, idempotent } });
  };
}

/** A per-call RPC's teller: the response headers, sent before the call runs (a client that sees them knows the call was taken in). */
export function idempotentHeaderTeller(call: { sendMetadata(headers: grpc.Metadata): void }): (name: string, idempotent: boolean) => void {
  return (_name, idempotent) => {
    const headers = new grpc.Metadata();
    headers.set(IDEMPOTENT_HEADER_KEY, idempotent ? '1' : '0');
    call.sendMetadata(headers);
  };
}
