// What a gateway link needs from the network: open a NodeLink.Connect stream, and close
// the channel. grpc-js in production (plaintext or TLS); a scripted stream in unit tests.
import * as grpc from '@grpc/grpc-js';
import { channelSecurity, DEFAULT_MAX_PAYLOAD_BYTES, ENVELOPE_SLACK_BYTES, FLOW_CONTROL_CHANNEL_OPTIONS, KEEPALIVE_OPTIONS, NodeLinkService, type GatewayFrame, type NodeFrame, type NodeTls } from '@easyremote/protocol';

/** Backoff of grpc-js's own channel reconnects; the link's reconnects (with its backoff) come on top. */
export const CHANNEL_INITIAL_RECONNECT_BACKOFF_MS = 100;
export const CHANNEL_MAX_RECONNECT_BACKOFF_MS = 1000;

/** The part of a bidirectional node stream a link uses. */
export interface NodeStream {
  /** False when the stream's buffer is full: wait for 'drain'. */
  write(frame: NodeFrame): boolean;
  /** True while the buffer is over its mark and a 'drain' is due. */
  readonly writableNeedDrain: boolean;
  end(): void;
  cancel(): void;
  on(event: 'data', listener: (frame: GatewayFrame) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end' | 'close' | 'drain', listener: () => void): unknown;
}

export interface LinkTransport {
  open(metadata: grpc.Metadata): NodeStream;
  /** Closes the channel; streams opened on it end. */
  close(): void;
  /** Whether the channel uses TLS (a failure to connect is explained accordingly). */
  readonly secure?: boolean;
}

const NodeLinkClient = grpc.makeGenericClientConstructor(NodeLinkService, 'NodeLink');

/** A grpc-js channel to one gateway, dedicated to the node's stream. */
export function grpcTransport(address: string, channelOptions: grpc.ChannelOptions = {}, tls?: NodeTls): LinkTransport {
  const security = channelSecurity(tls);
  const client = new NodeLinkClient(address, security.credentials, {
    ...KEEPALIVE_OPTIONS,
    ...FLOW_CONTROL_CHANNEL_OPTIONS,
    ...security.options,
    'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
    'grpc.max_send_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES,
    // The node's stream gets a connection of its own, never shared with a client in the same
    // process: a client's burst of cancellations must not take the node's stream down with it.
    'grpc.use_local_subchannel_pool': 1,
    // Reconnects are the link's (with backoff); do not let the channel hold calls while down.
    'grpc.initial_reconnect_backoff_ms': CHANNEL_INITIAL_RECONNECT_BACKOFF_MS,
    'grpc.max_reconnect_backoff_ms': CHANNEL_MAX_RECONNECT_BACKOFF_MS,
    ...channelOptions,
  });
  return {
    open: (metadata) => (client as unknown as { connect(m: grpc.Metadata): grpc.ClientDuplexStream<NodeFrame, GatewayFrame> }).connect(metadata),
    close: () => client.close(),
    secure: security.secure,
  };
}
