// `easyremote gateway`: which flag and environment variable set each field of the
// gateway's configuration. Structured fields (functions, outlierDetection, principals as
// objects, alert thresholds, retention) come from the configuration file; secrets (tokens)
// never from flags, which other users of the machine can read.
import type { SettingSpec } from '../settings/layers.js';

/** How long a gateway stopped by a signal lets calls in flight finish, unless configured. */
export const CLI_SHUTDOWN_GRACE_MS = 10_000;

const row = (path: string, flag: string | undefined, env: string | undefined, kind: SettingSpec['kind'], help: string, arg?: string): SettingSpec => ({ path, flag, env, kind, help, arg });

export const GATEWAY_SETTINGS: readonly SettingSpec[] = [
  row('port', 'port', 'EASYREMOTE_PORT', 'number', 'gRPC port (0: any free port)', '<port>'),
  row('host', 'host', 'EASYREMOTE_HOST', 'string', 'interface to listen on', '<host>'),
  row('insecure', 'insecure', 'EASYREMOTE_INSECURE', 'bool', 'listen beyond loopback without TLS or authentication'),
  row('httpPort', 'http-port', 'EASYREMOTE_HTTP_PORT', 'number', 'port of the HTTP API and /metrics (0: any free port; none when unset)', '<port>'),
  row('tls.cert', 'tls-cert', 'EASYREMOTE_TLS_CERT', 'string', "the gateway's certificate (PEM file)", '<file>'),
  row('tls.key', 'tls-key', 'EASYREMOTE_TLS_KEY', 'string', "the certificate's private key (PEM file)", '<file>'),
  row('tls.clientCa', 'tls-client-ca', 'EASYREMOTE_TLS_CLIENT_CA', 'string', 'CA that signs node certificates (PEM file)', '<file>'),
  row('tls.nodeCertificates', 'tls-node-certificates', 'EASYREMOTE_TLS_NODE_CERTIFICATES', 'bool', 'nodes must present a certificate; their id is the one it names'),
  row('tls.watchIntervalMs', 'tls-watch-interval-ms', 'EASYREMOTE_TLS_WATCH_INTERVAL_MS', 'number', 'how often certificate files are checked for changes (0: only on SIGHUP)', '<ms>'),
  row('heartbeatMs', 'heartbeat-ms', 'EASYREMOTE_HEARTBEAT_MS', 'number', 'heartbeat interval asked of nodes', '<ms>'),
  row('leaseMs', 'lease-ms', 'EASYREMOTE_LEASE_MS', 'number', 'a node silent this long is lost', '<ms>'),
  row('maxPayloadBytes', 'max-payload-bytes', 'EASYREMOTE_MAX_PAYLOAD_BYTES', 'number', 'largest arguments or result', '<bytes>'),
  row('defaultTimeoutMs', 'default-timeout-ms', 'EASYREMOTE_DEFAULT_TIMEOUT_MS', 'number', 'time limit of calls that set none', '<ms>'),
  row('retryCount', 'retry-count', 'EASYREMOTE_RETRY_COUNT', 'number', 'retries per call for functions that set none', '<n>'),
  row('defaultStrategy', 'default-strategy', 'EASYREMOTE_DEFAULT_STRATEGY', 'string', 'strategy of functions that name none', '<name>'),
  row('queueSize', 'queue-size', 'EASYREMOTE_QUEUE_SIZE', 'number', 'calls per function that may wait at the gateway', '<n>'),
  row('queueBytes', 'queue-bytes', 'EASYREMOTE_QUEUE_BYTES', 'number', 'argument bytes all waiting calls may hold', '<bytes>'),
  row('providerGapMs', 'provider-gap-ms', 'EASYREMOTE_PROVIDER_GAP_MS', 'number', 'how long a call waits for a provider to (re)register', '<ms>'),
  row('startupGraceMs', 'startup-grace-ms', 'EASYREMOTE_STARTUP_GRACE_MS', 'number', 'after start, how long calls to unregistered functions wait', '<ms>'),
  row('availableThreshold', 'available-threshold', 'EASYREMOTE_AVAILABLE_THRESHOLD', 'number', 'load (0..1) at which a node is avoided while others have room', '<fraction>'),
  row('slowStartMs', 'slow-start-ms', 'EASYREMOTE_SLOW_START_MS', 'number', 'ramp-up window of a node that joins (0: off)', '<ms>'),
  row('location', 'location', 'EASYREMOTE_LOCATION', 'string', "this gateway's location label", '<label>'),
  row('peers', 'peers', 'EASYREMOTE_PEERS', 'list', 'the other gateways of the set (host:port, comma-separated), shown at /api/peers', '<addresses>'),
  { path: 'metrics', flag: 'no-metrics', env: 'EASYREMOTE_NO_METRICS', kind: 'bool', whenTrue: false, help: 'keep no call history database' },
  row('metrics.path', 'metrics-path', 'EASYREMOTE_METRICS_PATH', 'string', 'call history database (SQLite file, or :memory:)', '<file>'),
  row('metrics.flushIntervalMs', 'metrics-flush-interval-ms', 'EASYREMOTE_METRICS_FLUSH_INTERVAL_MS', 'number', 'how often buffered call rows are written', '<ms>'),
  row('metrics.retention.maxAgeMs', 'metrics-max-age-ms', 'EASYREMOTE_METRICS_MAX_AGE_MS', 'number', 'rows older than this are deleted', '<ms>'),
  row('metrics.retention.maxRows', 'metrics-max-rows', 'EASYREMOTE_METRICS_MAX_ROWS', 'number', 'rows kept at most per table', '<n>'),
  row('cache.maxBytes', 'cache-max-bytes', 'EASYREMOTE_CACHE_MAX_BYTES', 'number', 'result cache size', '<bytes>'),
  row('cache.maxEntryShare', 'cache-max-entry-share', 'EASYREMOTE_CACHE_MAX_ENTRY_SHARE', 'number', 'largest share of the cache one result may take', '<fraction>'),
  row('alerts.intervalMs', 'alerts-interval-ms', 'EASYREMOTE_ALERTS_INTERVAL_MS', 'number', 'how often alert conditions are checked', '<ms>'),
  row('alerts.webhookUrl', 'alerts-webhook-url', 'EASYREMOTE_ALERTS_WEBHOOK_URL', 'string', 'http(s) URL that receives each new alert', '<url>'),
  row('auth.nodeTokens', undefined, 'EASYREMOTE_NODE_TOKENS', 'list', 'tokens nodes must present (comma-separated)'),
  row('auth.clientTokens', undefined, 'EASYREMOTE_CLIENT_TOKENS', 'list', 'tokens clients must present (comma-separated)'),
  row('auth.principals', undefined, 'EASYREMOTE_PRINCIPALS', 'json', 'named principals, a JSON list as in the file'),
  { path: 'coalesceFrames', flag: 'no-coalesce-frames', kind: 'bool', whenTrue: false, help: 'send each frame as its own message' },
  row('coalesceFrames', undefined, 'EASYREMOTE_COALESCE_FRAMES', 'bool', 'frames of one turn go out as one message'),
  row('heapHeadroomBytes', 'heap-headroom-bytes', 'EASYREMOTE_HEAP_HEADROOM_BYTES', 'number', 'heap growth V8 allows between full collections (0: V8 chooses)', '<bytes>'),
  row('logger.level', 'log-level', 'EASYREMOTE_LOG_LEVEL', 'string', 'fatal, error, warn, info (default), debug, trace or silent', '<level>'),
  row('logger.format', 'log-format', 'EASYREMOTE_LOG_FORMAT', 'string', 'json, or pretty (default on a terminal)', '<format>'),
  row('shutdownGraceMs', 'grace-ms', 'EASYREMOTE_GRACE_MS', 'number', `on SIGTERM/SIGINT, how long calls in flight may take to finish (default ${CLI_SHUTDOWN_GRACE_MS})`, '<ms>'),
];
