export { ComputeNode, type ComputeNodeOptions, type NodeEvents } from './compute-node.js';
export { remote, remoteMethodsOf } from './remote.js';
export { currentCall, tryCurrentCall, type CallContext } from './context.js';
export type { RemoteOptions, LoadBalancing } from './options.js';
export type { DirectOptions } from './direct/direct-options.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { SystemTelemetryProvider, StaticTelemetryProvider, TelemetrySampler, type TelemetryProvider, type TelemetrySample, type StaticCapabilities } from './telemetry/index.js';
export { DEFAULT_CONNECT_TIMEOUT_MS, DUPLICATE_ID_FALLBACK_MS } from './first-registration.js';
export type { NodeTls, NodeTlsOptions, Logger, LoggerOption, LoggerSettings, LogLevel, LogFormat, LogDestination, ShutdownSignalOptions } from '@easyremote/protocol';
export { drainOnSignals } from './drain-on-signals.js';
// The whole error catalogue: handlers throw InvalidArgument for bad input (it does not count
// against the node's health) and may throw any other (test/package-exports.test.ts keeps
// this list complete).
export {
  EasyRemoteError,
  RemoteError,
  FunctionNotFound,
  NodeNotFound,
  NoNodeAvailable,
  Overloaded,
  DeadlineExceeded,
  Cancelled,
  NodeLost,
  InvalidArgument,
  Unauthenticated,
  PermissionDenied,
  RateLimited,
  PayloadTooLarge,
  BudgetExceeded,
  RegistrationRefused,
  ProtocolError,
  GatewayUnavailable,
  GatewayLost,
  IdempotencyMismatch,
  InternalError,
  type ErrorCode,
  type ExceededLimit,
  type EasyRemoteErrorFields,
} from '@easyremote/protocol';
