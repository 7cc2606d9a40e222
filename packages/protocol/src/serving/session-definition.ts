// The Gateway service as a server registers it (the gateway, and a node serving calls
// directly): its Session method with a deserializer that never throws. grpc-js ends the
// whole stream when a message fails to decode, which would cut off every call on the
// session for one bad frame; a frame that does not decode is refused alone instead.
import type * as grpc from '@grpc/grpc-js';
import { GatewayService, type ClientFrame, type ServerFrame } from '../generated/easyremote/v1/gateway.js';

/** Calls one session may have in flight; beyond it a call is refused as OVERLOADED. */
export const MAX_SESSION_CALLS = 10_000;

/** A frame whose bytes did not decode: refused alone, the session stays. */
export interface UndecodableFrame {
  readonly undecodable: string;
}

export type SessionStream = grpc.ServerDuplexStream<ClientFrame | UndecodableFrame, ServerFrame>;

export function gatewayServiceDefinition(): grpc.ServiceDefinition {
  const session = GatewayService.session;
  return {
    ...GatewayService,
    session: {
      ...session,
      requestDeserialize: (bytes: Buffer): ClientFrame | UndecodableFrame => {
        try {
          return session.requestDeserialize(bytes);
        } catch (err) {
          return { undecodable: (err as Error).message };
        }
      },
    },
  };
}

/** Payload bytes a frame to the client carries (what makes a batch large). */
export function serverFrameBytes(f: ServerFrame): number {
  return f.result?.result.length ?? f.chunk?.chunk.length ?? f.resultPart?.data.length ?? 0;
}
