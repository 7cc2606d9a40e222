// A client connected straight to this node, as the node's CallRunner sees it: a CallLink
// like a gateway's, whose reply frames go to the client's calls instead. The runner, its
// scheduler and its limits are the same for calls from a gateway and from clients.
import type { ErrorDetail, NodeFrame } from '@easyremote/protocol';
import type { CallLink } from '../call-runner.js';

/** Where one direct call's replies go. Chunks and parts return false while the client's stream is backed up. */
export interface DirectReplies {
  result(payload: Buffer): void;
  resultPart(data: Buffer): boolean;
  chunk(payload: Buffer): boolean;
  end(): void;
  error(detail: ErrorDetail): void;
  progress(fraction: number, message: string): void;
}

export class DirectLink implements CallLink {
  private readonly calls = new Map<number, DirectReplies>();
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(
    readonly maxPayloadBytes: number,
    /** True while the client's stream buffer is over its mark. */
    private readonly backedUp: () => boolean,
  ) {}

  /** Replies for attempt `id` go to `replies` until remove(id). */
  add(id: number, replies: DirectReplies): void {
    this.calls.set(id, replies);
  }

  remove(id: number): void {
    this.calls.delete(id);
  }

  has(id: number): boolean {
    return this.calls.has(id);
  }

  get size(): number {
    return this.calls.size;
  }

  /** Every call still open (to end them when the node stops). */
  open(): DirectReplies[] {
    return [...this.calls.values()];
  }

  send(frame: NodeFrame): boolean {
    if (frame.result) this.calls.get(frame.result.attemptId)?.result(frame.result.payload);
    else if (frame.resultPart) this.calls.get(frame.resultPart.attemptId)?.resultPart(frame.resultPart.data);
    else if (frame.chunk) this.calls.get(frame.chunk.attemptId)?.chunk(frame.chunk.payload);
    else if (frame.end) this.calls.get(frame.end.attemptId)?.end();
    else if (frame.error) {
      const { attemptId, error } = frame.error;
      if (error !== undefined) this.calls.get(attemptId)?.error(error);
    } else if (frame.progress) this.calls.get(frame.progress.attemptId)?.progress(frame.progress.fraction, frame.progress.message);
    return !this.backedUp();
  }

  isLive(): boolean {
    return !this.closed;
  }

  writable(): Promise<void> {
    if (this.closed || !this.backedUp()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The client's stream took its buffer down: producers held back by it go on. */
  drained(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** The client is gone: nothing more is sent, and waiting producers are let go. */
  close(): void {
    this.closed = true;
    this.calls.clear();
    this.drained();
  }
}
