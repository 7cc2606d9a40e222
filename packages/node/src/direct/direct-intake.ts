// Where a client's call to this node enters, whatever carried it (Call, CallStream or a
// Session frame): the same checks, in the same order and with the same errors, as at the
// gateway's intake (limits, the caller's permission, the function, its kind, the payload
// limit, a wrong idempotency assumption, the principal's own limits), the deadline the
// gateway would set, and then the node's one CallRunner. The node ends a direct call at its deadline itself, as the
// gateway does for the calls it relays.
import {
  AFFINITY_METADATA_KEY,
  callDeadline,
  Cancelled,
  checkCallOptions,
  checkFunctionName,
  checkMetadata,
  DeadlineExceeded,
  FunctionNotFound,
  IdempotencyMismatch,
  InvalidArgument,
  PayloadTooLarge,
  PermissionDenied,
  quote,
  resultProfile,
  type CallOptions,
  type EasyRemoteError,
  type ErrorDetail,
  type Principal,
  type PrincipalLimits,
} from '@easyremote/protocol';
import type { CallRunner } from '../call-runner.js';
import type { DirectLink, DirectReplies } from './direct-link.js';

/** A call as its transport received it. */
export interface DirectRequest {
  readonly function: string;
  /** The arguments, or their first part when `argsSize` is larger. */
  readonly args: Buffer;
  readonly argsSize: number;
  readonly options: CallOptions | undefined;
  /** The caller's metadata as handlers see it (transport headers removed). */
  readonly metadata: Record<string, string>;
  /** The caller's deadline, epoch ms; Infinity for none. */
  readonly callerDeadlineMs: number;
  readonly graceHeader: string | undefined;
  /** End exactly at the caller's deadline (a session call: nothing on the caller's side resets it). */
  readonly exactDeadline: boolean;
  /** CallStream semantics (chunks) rather than Call's (one result). */
  readonly streaming: boolean;
  readonly wantProgress: boolean;
  /** Chunks (or parts of a large result) the call may get before the caller grants more. */
  readonly initialCredit: number;
  readonly caller: Principal;
  /** The caller would resend the call elsewhere if this node were lost: a function not declared idempotent refuses it, unrun. */
  readonly assumeIdempotent: boolean;
  /** Told whether the function is idempotent once it is found and the call's limits passed (SessionFunction, the response header). */
  readonly onFunction?: (name: string, idempotent: boolean) => void;
}

/** A direct call admitted to the runner. */
export interface DirectCall {
  /** The caller cancelled or went away: the handler is told, nothing more is sent. */
  cancel(): void;
  /** The caller consumed `n` chunks or parts. */
  credit(n: number): void;
  /** The next part of the arguments. */
  argsPart(data: Buffer): void;
}

export interface DirectIntakeSettings {
  readonly nodeId: string;
  readonly maxPayloadBytes: number;
  readonly defaultTimeoutMs: number;
}

export class DirectIntake {
  private nextCallId = 1;
  /** Links with calls open, so a stopping node can answer every one. */
  private readonly links = new Set<DirectLink>();

  constructor(
    private readonly runner: CallRunner,
    private readonly limits: PrincipalLimits,
    private readonly settings: DirectIntakeSettings,
  ) {}

  /** Runs a call on `link`; a refusal goes to `replies` at once (and the answer is undefined). */
  start(link: DirectLink, request: DirectRequest, replies: DirectReplies): DirectCall | undefined {
    const refused = this.check(request);
    if (refused !== undefined) {
      replies.error(refused.toDetail());
      return undefined;
    }
    const fn = this.runner.definition(request.function)!;
    const { nodeId, defaultTimeoutMs } = this.settings;
    const deadline = callDeadline({
      nowMs: Date.now(),
      callerDeadlineMs: request.callerDeadlineMs,
      graceHeader: request.graceHeader,
      exact: request.exactDeadline,
      functionTimeoutMs: fn.options.timeout ?? 0,
      defaultTimeoutMs,
    });
    const runner = this.runner;
    // The runner's own id, never the caller's: a session may reuse a call id the moment it
    // cancels, while the runner still winds the cancelled call down.
    const id = this.nextCallId++;
    let done = false;
    const finish = () => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      link.remove(id);
      if (link.size === 0) this.links.delete(link);
      this.limits.release(request.caller);
      return true;
    };
    // Only the first end, result or error reaches the caller.
    this.links.add(link);
    link.add(id, {
      result: (payload) => finish() && replies.result(payload),
      resultPart: (data) => done || replies.resultPart(data),
      chunk: (payload) => done || replies.chunk(payload),
      end: () => finish() && replies.end(),
      error: (detail: ErrorDetail) => finish() && replies.error(detail),
      progress: (fraction, message) => done || replies.progress(fraction, message),
    });
    const timer = setTimeout(() => {
      if (!finish()) return;
      replies.error(new DeadlineExceeded(`${fn.name} did not finish before its deadline (node ${nodeId})`).toDetail());
      runner.cancel(link, id, 'deadline');
    }, Math.max(0, deadline - Date.now()));
    timer.unref();
    runner.invoke(link, {
      attemptId: id,
      callId: id,
      attempt: 1,
      function: fn.name,
      args: request.args,
      deadlineUnixMs: deadline,
      metadata: request.metadata,
      initialCredit: request.initialCredit,
      wantProgress: request.wantProgress,
      portableResult: resultProfile(request.options) === 'portable',
      argsSize: request.argsSize > request.args.length ? request.argsSize : 0,
      caller: request.caller.callerName,
    });
    return {
      cancel: () => {
        if (finish()) runner.cancel(link, id, 'client-cancelled');
      },
      credit: (n) => {
        if (!done) runner.credit(link, id, n);
      },
      argsPart: (data) => {
        if (!done) runner.argsPart(link, id, data);
      },
    };
  }

  get nodeId(): string {
    return this.settings.nodeId;
  }

  /** The client behind `link` is gone: its calls still in the runner are fenced (told to stop, never answered). */
  linkClosed(link: DirectLink): void {
    link.close();
    this.runner.linkLost(link, 'the client went away');
  }

  /** Ends every open call with `err` (the node is stopping). */
  failAll(err: EasyRemoteError): void {
    const detail = err.toDetail();
    for (const link of [...this.links]) for (const replies of link.open()) replies.error(detail);
  }

  /** The gateway's intake checks, in its order; the principal's slot is taken last. */
  private check(request: DirectRequest): EasyRemoteError | undefined {
    const badName = checkFunctionName(request.function);
    if (badName) return badName;
    const badRequest = checkMetadata(request.metadata) ?? checkCallOptions(request.options, request.metadata[AFFINITY_METADATA_KEY]);
    if (badRequest) return badRequest;
    if (!request.caller.mayCall(request.function)) return new PermissionDenied(`${request.caller.name} may not call ${quote(request.function)}`);
    const fn = this.runner.definition(request.function);
    if (fn === undefined) return new FunctionNotFound(`function ${quote(request.function)} is not served by node ${this.settings.nodeId}`);
    if (!request.streaming && fn.kind === 'stream') {
      return new InvalidArgument(`${fn.name} is a stream (generator) function: call it with CallStream and iterate the values`);
    }
    const argsBytes = Math.max(request.argsSize, request.args.length);
    const limit = this.settings.maxPayloadBytes;
    if (argsBytes > limit) {
      return new PayloadTooLarge(`arguments of ${argsBytes} bytes exceed node ${this.settings.nodeId}'s limit of ${limit} bytes`, {
        limit: { name: 'max_payload_bytes', limit, actual: argsBytes },
      });
    }
    const idempotent = fn.options.idempotent ?? false;
    request.onFunction?.(fn.name, idempotent);
    if (request.assumeIdempotent && !idempotent) {
      return new IdempotencyMismatch(`${fn.name} is not idempotent on node ${this.settings.nodeId}; the call was not run: send it again without assuming it is`);
    }
    return this.limits.acquire(request.caller);
  }
}

/** What a call still open gets when the node stops. */
export function stopping(nodeId: string): EasyRemoteError {
  return new Cancelled(`node ${nodeId} is stopping`);
}
