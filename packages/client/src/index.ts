export { Client, connect, RESERVED_NAMES, type ClientOptions, type DynamicClient, type RemoteFunctions } from './client.js';
export type { CallOptions } from './call-options.js';
export type { LookAsideOptions } from './look-aside.js';
export type { RemoteCall, RemoteStream, AnyRemoteCall } from './remote-call.js';
export type { Remote, RemoteMethod } from './typed.js';
// The whole error catalogue, so callers can test `instanceof` without a direct dependency
// on @easyremote/protocol (test/package-exports.test.ts keeps this list complete).
export {
  EasyRemoteError,
  RemoteError,
  FunctionNotFound,
  NodeNotFound,
  IdempotencyMismatch,
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
  InternalError,
  type ErrorCode,
  type ExceededLimit,
  type EasyRemoteErrorFields,
} from '@easyremote/protocol';
export { AdminClient, type AdminClientOptions } from './admin-client.js';
export type { ClientTls, TlsClientOptions } from '@easyremote/protocol';
export type {
  AlertsDocument,
  BackendDocument,
  CacheInvalidation,
  DrainResult,
  FunctionInfo,
  FunctionStatsDocument,
  MetricsDocument,
  NodeInfo,
  NodeStatsDocument,
  OptimisationReport,
  OptimisationReport as Recommendations,
  PeersDocument,
  PeerInfo,
  NodeGatewayLink,
  PerformanceStats as LatencyStats,
} from '@easyremote/protocol';
