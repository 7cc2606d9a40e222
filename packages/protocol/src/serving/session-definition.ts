// What every server of Gateway.Session shares (the gateway, and a node serving calls
// directly): its limit of calls in flight, the stream's type, and what makes a batch large.
import type * as grpc from '@grpc/grpc-js';
import type { ClientFrame, ServerFrame } from '../generated/easyremote/v1/gateway.js';
import type { Undecodable } from './tolerant-definitions.js';

/** Calls one session may have in flight; beyond it a call is refused as OVERLOADED. */
export const MAX_SESSION_CALLS = 10_000;

/** A Session stream as a server sees it: frames, or the marker of one that did not decode. */
export type SessionStream = grpc.ServerDuplexStream<ClientFrame | Undecodable, ServerFrame>;

/** Payload bytes a frame to the client carries (what makes a batch large). */
export function serverFrameBytes(f: ServerFrame): number {
  return f.result?.result.length ?? f.chunk?.chunk.length ?? f.resultPart?.data.length ?? 0;
}
