// A handler reaches its call's context through AsyncLocalStorage, so remote functions
// keep their plain signatures: `async train(data) { currentCall().progress(0.5) }`.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface CallContext {
  readonly callId: number;
  /** 1 for the first attempt; higher when the gateway retried the call here. */
  readonly attempt: number;
  readonly functionName: string;
  readonly nodeId: string;
  /** Absolute deadline (epoch ms), or undefined. */
  readonly deadline: number | undefined;
  /** Fires on deadline, on client cancel, on client disconnect and on node shutdown. */
  readonly signal: AbortSignal;
  /**
   * The name of the principal that made the call, as the gateway authenticated it (never
   * a token); '' when the gateway has no client authentication.
   */
  readonly caller: string;
  /** The caller's gRPC metadata (string values). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Reports progress (0..1) to the caller if it listens; cheap no-op otherwise. */
  progress(fraction: number, message?: string): void;
}

// One store per process, shared by every copy of this package loaded in it (a program's
// own and the one `easyremote node` runs it with), so that currentCall() in a handler
// works whichever copy runs the call.
const STORAGE_KEY = Symbol.for('easyremote.node.call-context');
const storage = ((globalThis as Record<symbol, unknown>)[STORAGE_KEY] ??= new AsyncLocalStorage<CallContext>()) as AsyncLocalStorage<CallContext>;

export function runWithContext<T>(context: CallContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The context of the remote call being handled; throws outside a handler. */
export function currentCall(): CallContext {
  const ctx = storage.getStore();
  if (ctx === undefined) throw new Error('currentCall() used outside a remote function call');
  return ctx;
}

/** Like currentCall(), but undefined outside a handler. */
export function tryCurrentCall(): CallContext | undefined {
  return storage.getStore();
}
