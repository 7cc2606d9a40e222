export { Client, connect, RESERVED_NAMES, type ClientOptions, type DynamicClient, type RemoteFunctions } from './client.js';
export type { CallOptions } from './call-options.js';
export type { RemoteCall, RemoteStream, AnyRemoteCall } from './remote-call.js';
export type { Remote, RemoteMethod } from './typed.js';
export {
  EasyRemoteError,
  RemoteError,
  FunctionNotFound,
  NoNodeAvailable,
  Overloaded,
  DeadlineExceeded,
  Cancelled,
  NodeLost,
  InvalidArgument,
  Unauthenticated,
  PayloadTooLarge,
  BudgetExceeded,
  InternalError,
  type ErrorCode,
} from '@easyremote/protocol';
export { AdminClient, type NodeInfo, type FunctionInfo, type MetricsDocument, type Recommendations, type AlertsDocument, type LatencyStats } from './admin-client.js';
