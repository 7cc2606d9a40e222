// The error catalogue shared by gateway, node and client. Every error has a code (data,
// not message text), one gRPC status and a `retryable` flag: true when sending the same
// call again is safe and may succeed.
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ErrorDetail } from './generated/easyremote/v1/common.js';
import { clip, MAX_ERROR_MESSAGE_CHARS, MAX_ERROR_STACK_CHARS } from './limits.js';
import { serializeMessage } from './message-writer.js';
import { RETRY_AFTER_METADATA_KEY } from './constants.js';

export const ERROR_TRAILER = 'easyremote-error-bin';

export type ErrorCode =
  | 'REMOTE_ERROR'
  | 'FUNCTION_NOT_FOUND'
  | 'NODE_NOT_FOUND'
  | 'NO_NODE_AVAILABLE'
  | 'OVERLOADED'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'NODE_LOST'
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE'
  | 'BUDGET_EXCEEDED'
  | 'REGISTRATION_REFUSED'
  | 'PROTOCOL_ERROR'
  | 'GATEWAY_UNAVAILABLE'
  | 'GATEWAY_LOST'
  | 'IDEMPOTENCY_MISMATCH'
  | 'INTERNAL';

interface CodeInfo {
  status: GrpcStatus;
  retryable: boolean;
}

export const ERROR_CODES: Readonly<Record<ErrorCode, CodeInfo>> = {
  REMOTE_ERROR: { status: GrpcStatus.UNKNOWN, retryable: false },
  FUNCTION_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, retryable: false },
  NODE_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, retryable: false },
  NO_NODE_AVAILABLE: { status: GrpcStatus.UNAVAILABLE, retryable: true },
  OVERLOADED: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: true },
  DEADLINE_EXCEEDED: { status: GrpcStatus.DEADLINE_EXCEEDED, retryable: false },
  CANCELLED: { status: GrpcStatus.CANCELLED, retryable: false },
  // The node may or may not have run the call: only the caller knows whether repeating it is safe.
  NODE_LOST: { status: GrpcStatus.UNAVAILABLE, retryable: false },
  INVALID_ARGUMENT: { status: GrpcStatus.INVALID_ARGUMENT, retryable: false },
  UNAUTHENTICATED: { status: GrpcStatus.UNAUTHENTICATED, retryable: false },
  // Authenticated, but the principal may not do this (call this function, register this node id, drain).
  PERMISSION_DENIED: { status: GrpcStatus.PERMISSION_DENIED, retryable: false },
  // The principal is over its own limit (calls at once, calls per second); others are unaffected.
  RATE_LIMITED: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: true },
  PAYLOAD_TOO_LARGE: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false },
  BUDGET_EXCEEDED: { status: GrpcStatus.FAILED_PRECONDITION, retryable: false },
  REGISTRATION_REFUSED: { status: GrpcStatus.ALREADY_EXISTS, retryable: false },
  // A node broke the stream protocol (e.g. sent chunks beyond its credit) mid-call.
  PROTOCOL_ERROR: { status: GrpcStatus.INTERNAL, retryable: false },
  // Raised by a client that cannot reach its gateway: nothing was sent, so trying again is safe.
  GATEWAY_UNAVAILABLE: { status: GrpcStatus.UNAVAILABLE, retryable: true },
  // Raised by a client whose connection to the gateway broke while a call was in flight:
  // it may or may not have run, so only the caller knows whether repeating it is safe.
  GATEWAY_LOST: { status: GrpcStatus.UNAVAILABLE, retryable: false },
  // A call sent assuming its function idempotent (so that the client would resend it if
  // the gateway were lost) to a gateway that finds it is not: refused unrun, so sending
  // it again without the assumption is safe.
  IDEMPOTENCY_MISMATCH: { status: GrpcStatus.FAILED_PRECONDITION, retryable: true },
  INTERNAL: { status: GrpcStatus.INTERNAL, retryable: false },
};

/** A refusal by a limit: which one, its value, and the size that exceeded it. */
export interface ExceededLimit {
  readonly name: string;
  readonly limit: number;
  readonly actual: number;
}

export interface EasyRemoteErrorFields {
  retryAfterMs?: number;
  nodeId?: string;
  remoteName?: string;
  remoteStack?: string;
  limit?: ExceededLimit;
  cause?: unknown;
}

export class EasyRemoteError extends Error {
  readonly code: ErrorCode;
  readonly grpcStatus: GrpcStatus;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly nodeId?: string;
  readonly limit?: ExceededLimit;

  constructor(code: ErrorCode, message: string, fields: EasyRemoteErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.code = code;
    this.grpcStatus = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
    if (fields.retryAfterMs !== undefined) this.retryAfterMs = fields.retryAfterMs;
    if (fields.nodeId !== undefined && fields.nodeId !== '') this.nodeId = fields.nodeId;
    if (fields.limit !== undefined && fields.limit.name !== '') this.limit = fields.limit;
  }

  /** The wire form; texts are cut so the trailer stays small whatever was thrown. */
  toDetail(): ErrorDetail {
    return {
      code: this.code,
      message: clip(this.message, MAX_ERROR_MESSAGE_CHARS),
      remoteName: '',
      remoteStack: '',
      retryAfterMs: this.retryAfterMs ?? 0,
      nodeId: this.nodeId ?? '',
      retryable: this.retryable,
      limitName: this.limit?.name ?? '',
      limit: this.limit?.limit ?? 0,
      actual: this.limit?.actual ?? 0,
    };
  }
}

/** A handler threw: the remote error's class name, message and stack, as data. */
export class RemoteError extends EasyRemoteError {
  readonly remoteName: string;
  readonly remoteStack: string;
  constructor(message: string, fields: EasyRemoteErrorFields = {}) {
    super('REMOTE_ERROR', message, fields);
    this.remoteName = fields.remoteName ?? 'Error';
    this.remoteStack = fields.remoteStack ?? '';
  }
  override toDetail(): ErrorDetail {
    return { ...super.toDetail(), remoteName: clip(this.remoteName, MAX_ERROR_MESSAGE_CHARS), remoteStack: clip(this.remoteStack, MAX_ERROR_STACK_CHARS) };
  }
}

function defineError(code: ErrorCode) {
  return class extends EasyRemoteError {
    constructor(message: string, fields: EasyRemoteErrorFields = {}) {
      super(code, message, fields);
    }
  };
}

export class FunctionNotFound extends defineError('FUNCTION_NOT_FOUND') {}
export class NodeNotFound extends defineError('NODE_NOT_FOUND') {}
export class NoNodeAvailable extends defineError('NO_NODE_AVAILABLE') {}
export class Overloaded extends defineError('OVERLOADED') {}
export class DeadlineExceeded extends defineError('DEADLINE_EXCEEDED') {}
export class Cancelled extends defineError('CANCELLED') {}
export class NodeLost extends defineError('NODE_LOST') {}
export class InvalidArgument extends defineError('INVALID_ARGUMENT') {}
export class Unauthenticated extends defineError('UNAUTHENTICATED') {}
export class PermissionDenied extends defineError('PERMISSION_DENIED') {}
export class RateLimited extends defineError('RATE_LIMITED') {}
export class PayloadTooLarge extends defineError('PAYLOAD_TOO_LARGE') {}
export class BudgetExceeded extends defineError('BUDGET_EXCEEDED') {}
export class RegistrationRefused extends defineError('REGISTRATION_REFUSED') {}
export class ProtocolError extends defineError('PROTOCOL_ERROR') {}
export class GatewayUnavailable extends defineError('GATEWAY_UNAVAILABLE') {}
export class GatewayLost extends defineError('GATEWAY_LOST') {}
export class IdempotencyMismatch extends defineError('IDEMPOTENCY_MISMATCH') {}
export class InternalError extends defineError('INTERNAL') {}

const CLASS_BY_CODE: Record<Exclude<ErrorCode, 'REMOTE_ERROR'>, new (m: string, f?: EasyRemoteErrorFields) => EasyRemoteError> = {
  FUNCTION_NOT_FOUND: FunctionNotFound,
  NODE_NOT_FOUND: NodeNotFound,
  NO_NODE_AVAILABLE: NoNodeAvailable,
  OVERLOADED: Overloaded,
  DEADLINE_EXCEEDED: DeadlineExceeded,
  CANCELLED: Cancelled,
  NODE_LOST: NodeLost,
  INVALID_ARGUMENT: InvalidArgument,
  UNAUTHENTICATED: Unauthenticated,
  PERMISSION_DENIED: PermissionDenied,
  RATE_LIMITED: RateLimited,
  PAYLOAD_TOO_LARGE: PayloadTooLarge,
  BUDGET_EXCEEDED: BudgetExceeded,
  REGISTRATION_REFUSED: RegistrationRefused,
  PROTOCOL_ERROR: ProtocolError,
  GATEWAY_UNAVAILABLE: GatewayUnavailable,
  GATEWAY_LOST: GatewayLost,
  IDEMPOTENCY_MISMATCH: IdempotencyMismatch,
  INTERNAL: InternalError,
};

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** Rebuilds the typed error from its wire form. */
export function errorFromDetail(detail: ErrorDetail): EasyRemoteError {
  const fields: EasyRemoteErrorFields = {
    nodeId: detail.nodeId,
    remoteName: detail.remoteName,
    remoteStack: detail.remoteStack,
  };
  if (detail.retryAfterMs > 0) fields.retryAfterMs = detail.retryAfterMs;
  if (detail.limitName) fields.limit = { name: detail.limitName, limit: detail.limit, actual: detail.actual };
  if (detail.code === 'REMOTE_ERROR') return new RemoteError(detail.message, fields);
  const Cls = isErrorCode(detail.code) ? CLASS_BY_CODE[detail.code as keyof typeof CLASS_BY_CODE] : InternalError;
  return new Cls(detail.message, fields);
}

/** Wraps anything thrown into a catalogue error (unknown throwables become INTERNAL). */
export function toEasyRemoteError(err: unknown): EasyRemoteError {
  if (err instanceof EasyRemoteError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

/** The gRPC error object a server handler passes to its callback / `destroy`. */
export function toServiceError(err: EasyRemoteError): Partial<ServiceError> {
  const metadata = new Metadata();
  const detail = err.toDetail();
  metadata.set(ERROR_TRAILER, serializeMessage(ErrorDetail, detail));
  if (err.retryAfterMs !== undefined) metadata.set(RETRY_AFTER_METADATA_KEY, String(err.retryAfterMs));
  return { code: err.grpcStatus, details: `${err.code}: ${detail.message}`, metadata };
}

const STATUS_TO_CODE: Partial<Record<GrpcStatus, ErrorCode>> = {
  [GrpcStatus.NOT_FOUND]: 'FUNCTION_NOT_FOUND',
  [GrpcStatus.UNAVAILABLE]: 'GATEWAY_UNAVAILABLE',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'PAYLOAD_TOO_LARGE',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [GrpcStatus.CANCELLED]: 'CANCELLED',
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [GrpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
};

/**
 * Turns a gRPC client-side error into the catalogue error it carries (or the closest
 * one). Every error the gateway raises carries the trailer; an UNAVAILABLE without it
 * comes from the transport (nothing listening, DNS, TLS, a dropped connection), so it is
 * GATEWAY_UNAVAILABLE naming `address`, never a statement about nodes.
 */
export function fromServiceError(err: ServiceError, address?: string): EasyRemoteError {
  const raw = err.metadata?.get(ERROR_TRAILER)?.[0];
  if (raw !== undefined && typeof raw !== 'string') {
    try {
      return errorFromDetail(ErrorDetail.decode(raw));
    } catch {
      // fall through to the status code: a damaged trailer must not hide the error
    }
  }
  const code = STATUS_TO_CODE[err.code as GrpcStatus] ?? 'INTERNAL';
  const message = err.details || err.message;
  if (code === 'GATEWAY_UNAVAILABLE') {
    return new GatewayUnavailable(`gateway ${address ?? ''} unreachable: ${message}`.replace('gateway  ', 'gateway '), { cause: err });
  }
  return new CLASS_BY_CODE[code as Exclude<ErrorCode, 'REMOTE_ERROR'>](message, { cause: err });
}
