// The command line's exit statuses. A failed call exits with a status of its own per
// error code, so a script can tell "no node" from "the handler threw" without parsing.
import type { ErrorCode } from '@easyremote/protocol';

export const EXIT_OK = 0;
/** Something failed that is not a call's error: the gateway could not start, a node was refused, ... */
export const EXIT_FAILURE = 1;
/** The command line or the configuration is wrong (a flag, a variable, the file, the arguments' JSON). */
export const EXIT_USAGE = 2;

/** One status per catalogue error code, 10 and up; the compiler checks that every code has one. */
export const ERROR_EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  REMOTE_ERROR: 10,
  FUNCTION_NOT_FOUND: 11,
  NODE_NOT_FOUND: 12,
  NO_NODE_AVAILABLE: 13,
  OVERLOADED: 14,
  DEADLINE_EXCEEDED: 15,
  CANCELLED: 16,
  NODE_LOST: 17,
  INVALID_ARGUMENT: 18,
  UNAUTHENTICATED: 19,
  PERMISSION_DENIED: 20,
  RATE_LIMITED: 21,
  PAYLOAD_TOO_LARGE: 22,
  BUDGET_EXCEEDED: 23,
  REGISTRATION_REFUSED: 24,
  PROTOCOL_ERROR: 25,
  GATEWAY_UNAVAILABLE: 26,
  GATEWAY_LOST: 27,
  INTERNAL: 28,
  IDEMPOTENCY_MISMATCH: 29,
};

export function exitCodeOf(code: string): number {
  return (ERROR_EXIT_CODES as Record<string, number>)[code] ?? EXIT_FAILURE;
}
