// Look-aside mode's wiring: the router over the client's gateways, and each provider's
// direct address reached through a GatewayConnection of its own (sessions, per-call
// fallback, TLS, token and errors exactly as for a gateway, since a node serves the same
// service). A direct connection is one address, with no failover of its own: what a
// failure there means (unreachable, lost) is the router's to decide.
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import type { ClientTls } from '@easyremote/protocol';
import { GatewayConnection } from './gateway-connection.js';
import type { GatewaySet } from './gateway-set.js';
import { IdempotencyKnowledge } from './idempotency.js';
import { LookAsideRouter, type DirectTransport, type LookAsideOptions } from './look-aside.js';

export { LookAsideRouter, type LookAsideOptions };

/** The client's options, as far as look-aside mode reads them. */
export interface LookAsideClientOptions {
  token?: string;
  tls?: ClientTls;
  channelOptions?: grpc.ChannelOptions;
  transport?: 'session' | 'unary';
  lookAside?: LookAsideOptions & { tls?: ClientTls };
}

export function lookAsideRouter(gateways: GatewaySet, options: LookAsideClientOptions): LookAsideRouter {
  // A gateway's serverName would not match a node's certificate.
  const tls = options.lookAside?.tls ?? (options.tls === undefined || options.tls === true ? options.tls : { ...options.tls, serverName: undefined });
  // Direct calls never go out assuming their function idempotent (a lost node is NODE_LOST, not resent), so what nodes say is not needed.
  const knowledge = new IdempotencyKnowledge();
  const direct = (address: string): DirectTransport => {
    const connection = new GatewayConnection(
      { address, given: address },
      { token: options.token, transport: options.transport ?? 'session', tls, channelOptions: options.channelOptions, knowledge, now: () => performance.now(), random: Math.random },
    );
    return {
      start: (request, listener) => connection.start({ ...request, assumeIdempotent: false }, listener),
      ready: (timeoutMs) => connection.waitForReady(Date.now() + timeoutMs),
      close: () => connection.close(),
    };
  };
  return new LookAsideRouter({ gateways, token: options.token, viaGateway: (request, listener) => gateways.start(request, listener), direct, options: options.lookAside ?? {} });
}
