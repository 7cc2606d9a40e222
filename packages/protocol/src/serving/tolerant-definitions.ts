// Service definitions whose request deserializers never throw. grpc-js answers bytes that
// fail to decode with INTERNAL and no trailer, which reads as a server fault and, on a
// stream, ends it; the peer sent something malformed and is told so with INVALID_ARGUMENT
// and the catalogue trailer, by the handler that receives the `Undecodable` marker. The
// gateway and a node serving calls directly register the same definitions.
import type * as grpc from '@grpc/grpc-js';
import { GatewayService } from '../generated/easyremote/v1/gateway.js';
import { NodeLinkService } from '../generated/easyremote/v1/node.js';

/** What a handler receives instead of a message whose bytes did not decode. */
export interface Undecodable {
  readonly undecodable: string;
}

type Method = { requestDeserialize: (bytes: Buffer) => unknown };

function tolerant<M extends Method>(method: M): M {
  return {
    ...method,
    requestDeserialize: (bytes: Buffer) => {
      try {
        return method.requestDeserialize(bytes);
      } catch (err) {
        return { undecodable: (err as Error).message } satisfies Undecodable;
      }
    },
  };
}

/** Every method of `service` made tolerant. */
function tolerantService<S extends Record<string, Method>>(service: S): grpc.ServiceDefinition {
  return Object.fromEntries(Object.entries(service).map(([name, method]) => [name, tolerant(method)])) as unknown as grpc.ServiceDefinition;
}

export function gatewayServiceDefinition(): grpc.ServiceDefinition {
  return tolerantService(GatewayService);
}

export function nodeLinkDefinition(): grpc.ServiceDefinition {
  return tolerantService(NodeLinkService);
}

export function isUndecodable(message: unknown): message is Undecodable {
  return typeof message === 'object' && message !== null && 'undecodable' in message;
}
