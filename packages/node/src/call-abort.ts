// A call's abort state. Its AbortSignal is made only when something asks for it (a
// handler reading `currentCall().signal`, a worker thread, a wait for room on the stream):
// Node makes a signal in about 5 µs, which was a quarter of a node's CPU per small call,
// and most handlers never look at it. The runner itself reads the flag.
export class CallAbort {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;

  /** The call's signal, made on first use; already aborted (with the reason) if the call was. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Aborts once: a later reason is ignored, as AbortController ignores it. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}
