// Look-aside mode's wiring: the router on the gateway's channel, and each provider's
// direct address reached through a Client of its own (sessions, per-call fallback, TLS,
// token and errors exactly as for a gateway, since a node serves the same service).
import * as grpc from '@grpc/grpc-js';
import type { ClientTls, EasyRemoteError } from '@easyremote/protocol';
import { LookAsideRouter, type DirectTransport, type LookAsideOptions } from './look-aside.js';
import type { CallHandle, CallListener, SessionRequest } from './session.js';
import { CLIENT_CHANNEL, START_CALL } from './start-call.js';

export { LookAsideRouter, type LookAsideOptions };

/** What the router needs of a Client connected to a provider's address. */
export interface DirectClient {
  [START_CALL](request: SessionRequest, listener: CallListener): CallHandle;
  readonly [CLIENT_CHANNEL]: grpc.Channel;
  close(): void;
}

/** The options a Client is made with, as far as the router passes them on. */
export interface DirectClientOptions {
  token?: string;
  tls?: ClientTls;
  channelOptions?: grpc.ChannelOptions;
  transport?: 'session' | 'unary';
  lookAside?: LookAsideOptions & { tls?: ClientTls };
}

export function lookAsideRouter(
  gateway: grpc.Client,
  options: DirectClientOptions,
  viaGateway: (request: SessionRequest, listener: CallListener) => CallHandle,
  errorOf: (err: grpc.ServiceError) => EasyRemoteError,
  openClient: (address: string, options: DirectClientOptions) => DirectClient,
): LookAsideRouter {
  const direct = (address: string): DirectTransport => {
    // A gateway's serverName would not match a node's certificate.
    const tls = options.lookAside?.tls ?? (options.tls === undefined || options.tls === true ? options.tls : { ...options.tls, serverName: undefined });
    const client = openClient(address, { token: options.token, tls, channelOptions: options.channelOptions, transport: options.transport });
    return {
      start: (request, listener) => client[START_CALL](request, listener),
      ready: (timeoutMs) => {
        const channel = client[CLIENT_CHANNEL];
        if (channel.getConnectivityState(true) === grpc.connectivityState.READY) return Promise.resolve();
        return new Promise((resolve, reject) => {
          const deadline = Date.now() + timeoutMs;
          const wait = (): void => {
            const state = channel.getConnectivityState(true);
            if (state === grpc.connectivityState.READY) return resolve();
            channel.watchConnectivityState(state, deadline, (err) => (err ? reject(err) : wait()));
          };
          wait();
        });
      },
      close: () => client.close(),
    };
  };
  return new LookAsideRouter({ gateway, token: options.token, viaGateway, direct, errorOf, options: options.lookAside ?? {} });
}
