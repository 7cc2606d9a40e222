/** Version of the node stream protocol carried in Register. */
export const PROTOCOL_VERSION = 1;

/** Largest args or result payload the gateway accepts by default (bytes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** Per-message gRPC limit = payload limit plus room for the envelope. */
export const ENVELOPE_SLACK_BYTES = 64 * 1024;

/** Chunks a streaming node may send before the gateway grants more. */
export const DEFAULT_STREAM_CREDIT = 16;

/** Default heartbeat interval of a node and lease after which a silent node is lost. */
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_LEASE_MS = 3000;

/** Client metadata key for the call's affinity key (consistent_hash). */
export const AFFINITY_METADATA_KEY = 'x-easyremote-affinity';

/** Authorization metadata key (tokens). */
export const AUTH_METADATA_KEY = 'authorization';

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
