/** Version of the node stream protocol carried in Register. */
export const PROTOCOL_VERSION = 1;

/** Largest args or result payload the gateway accepts by default (bytes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** Per-message gRPC limit = payload limit plus room for the envelope. */
export const ENVELOPE_SLACK_BYTES = 64 * 1024;

/** Chunks a streaming node may send before the gateway grants more. */
export const DEFAULT_STREAM_CREDIT = 16;

/**
 * Arguments and results larger than a part travel over a session and a node stream in
 * parts, each part within credit, so no hop holds a whole large payload and one large call
 * cannot hold up others on the same stream. The TypeScript client and node send parts of
 * `partBytesWithin(limit)`, where `limit` is the receiver's payload limit: at most
 * PAYLOAD_PART_BYTES (fewer, larger parts cost every hop less per byte), and at most that
 * limit or SAFE_PART_BYTES, whichever is larger, so a part always fits the receiver's
 * message limit (payload limit + ENVELOPE_SLACK_BYTES): a message over it would end the
 * whole stream.
 */
export const PAYLOAD_PART_BYTES = 256 * 1024;
/**
 * The part size when the receiver's payload limit is not known (yet): under
 * ENVELOPE_SLACK_BYTES, it fits any receiver's message limit whatever its payload limit.
 */
export const SAFE_PART_BYTES = 60 * 1024;

/** The part size for a receiver whose payload limit is `maxPayloadBytes` (undefined: not known). */
export function partBytesWithin(maxPayloadBytes: number | undefined): number {
  if (maxPayloadBytes === undefined || !(maxPayloadBytes > SAFE_PART_BYTES)) return SAFE_PART_BYTES;
  return Math.min(PAYLOAD_PART_BYTES, maxPayloadBytes);
}

/** Parts of a large payload a sender may have in flight before it is granted more. */
export const PAYLOAD_PART_CREDIT = 16;

/**
 * Response header of the Session RPC (sent at once, before any frame), from a gateway and
 * from a node's direct server: the server's payload limit in bytes, decimal. A client uses
 * it to size its argument parts (`partBytesWithin`).
 */
export const MAX_PAYLOAD_HEADER_KEY = 'easyremote-max-payload-bytes';

/** A payload that came in parts, whole: the parts before the last, and the last (no copy when there was only one). */
export function joinParts(parts: readonly Buffer[] | undefined, last: Buffer): Buffer {
  return parts === undefined || parts.length === 0 ? last : Buffer.concat([...parts, last]);
}

/**
 * HTTP/2 flow-control window, per stream and per connection, that the gateway, a node's
 * direct server, and the TypeScript client's and node's channels advertise (grpc-js and
 * Node default to 65,535 bytes). A sender may have this much unacknowledged data on the
 * wire; grpc-js reads everything it receives at once, so it is not memory held by the
 * receiver. With 64 KiB, a 16 MiB payload crossed each hop in 256 window round trips, each
 * a wake-up of both ends; over a 50 ms link it capped a stream at about 1.3 MB/s.
 */
export const HTTP2_WINDOW_BYTES = 4 * 1024 * 1024;

/** The channel option that makes a grpc-js channel advertise HTTP2_WINDOW_BYTES. */
export const FLOW_CONTROL_CHANNEL_OPTIONS = { 'grpc-node.flow_control_window': HTTP2_WINDOW_BYTES } as const;

/** Default heartbeat interval of a node and lease after which a silent node is lost. */
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_LEASE_MS = 3000;

/** Client metadata key for the call's affinity key (consistent_hash). */
export const AFFINITY_METADATA_KEY = 'x-easyremote-affinity';

/** Authorization metadata key (tokens): `authorization: Bearer <token>`. */
export const AUTH_METADATA_KEY = 'authorization';

/** Trailer metadata beside an error status: the suggested wait before a retry, ms. */
export const RETRY_AFTER_METADATA_KEY = 'retry-after-ms';

/**
 * A function name: starts with a letter or `_`, then letters, digits, `_`, `.`, `-`; at
 * most 128 characters. Checked by the node when a function is registered and by the
 * gateway when a node declares it.
 */
export const FUNCTION_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;
export const FUNCTION_NAME_RULE = 'letters, digits, _ . - (max 128), starting with a letter or _';

/** A node id: 1-128 of letters, digits and `_ . : @ -`. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.:@\-]{1,128}$/;
export const NODE_ID_RULE = '1-128 of letters, digits and _ . : @ -';

/** Node lifecycle and health events, and operators' actions (the audit trail), as recorded and served. */
export const NODE_EVENT_KINDS = ['joined', 'left', 'lost', 'ejected', 'readmitted', 'draining', 'refused', 'cache-invalidated'] as const;
export type NodeEventKind = (typeof NODE_EVENT_KINDS)[number];

/** Keepalive on both ends: a dead TCP peer is noticed even with no traffic. */
export const KEEPALIVE_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.max_pings_without_data': 0,
} as const;

/**
 * Our client sets its gRPC deadline this much after the call's real deadline and names
 * the grace in metadata; the gateway subtracts it and ends the call at the real deadline
 * itself. The server closing the stream, rather than the client resetting it, matters
 * under overload: a burst of client resets (a thousand calls timing out together) trips
 * HTTP/2 rapid-reset protection, which closes the connection and every call on it.
 */
export const DEADLINE_GRACE_MS = 1000;
export const DEADLINE_GRACE_METADATA_KEY = 'x-easyremote-deadline-grace-ms';

/**
 * Request metadata of `Call` / `CallStream` (value `1`): the client will resend the call to
 * another gateway if this one is lost before it ends, believing its function idempotent;
 * a gateway that finds it is not refuses it IDEMPOTENCY_MISMATCH, unrun. A session call
 * says the same in `SessionCall.assume_idempotent`. Never passed to the handler.
 */
export const ASSUME_IDEMPOTENT_METADATA_KEY = 'x-easyremote-assume-idempotent';
/**
 * Response header of `Call` / `CallStream`, sent as soon as the gateway has found the
 * function and before it routes the call: `1` when the function is idempotent, else `0`.
 * Its presence tells a client the gateway took the call in (a failure after it leaves the
 * outcome unknown).
 */
export const IDEMPOTENT_HEADER_KEY = 'easyremote-idempotent';
