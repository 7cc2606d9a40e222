// Coalesces the frames a stream's writer produces in one turn of the event loop into one
// message. Under load a gateway answers many calls per turn; each gRPC message costs a
// serialisation, an HTTP/2 DATA frame and a wake-up on the other side, so sending them
// as one batch frame divides that cost by the batch size. A lone frame goes out as itself.
// On a quiet stream (the last turn carried at most one frame) the first frame of a turn is
// written at once, so a lone call pays no wait for the end of the turn; only a stream that
// was busy holds its first frame back (Nagle's trade, decided per turn).

/** Frames at or above this many payload bytes are sent alone, never batched. */
export const SOLO_FRAME_BYTES = 16 * 1024;
/**
 * A batch is sent once it holds this many payload bytes, or this many frames. Both keep
 * a batch, envelopes included, under the smallest message limit a peer may have (a
 * gateway's is its payload limit + 64 KiB): a message over it would end the stream.
 */
export const MAX_BATCH_BYTES = 32 * 1024;
export const MAX_BATCH_FRAMES = 256;

export interface FrameBatcherOptions<F> {
  /** Writes one message to the stream; false when its buffer is full (the caller may wait for drain). */
  write(frame: F): boolean;
  /** Wraps several frames into the stream's batch frame. */
  batch(frames: F[]): F;
  /** Payload bytes a frame carries (args, results, chunks); the envelope is small and not counted. */
  sizeOf(frame: F): number;
  /** Defers the flush; setImmediate by default (after the I/O callbacks of this turn). */
  defer?: (flush: () => void) => void;
}

export class FrameBatcher<F> {
  private pending: F[] = [];
  private bytes = 0;
  private scheduled = false;
  private closed = false;
  private readonly defer: (flush: () => void) => void;
  /** Whether the next turn's first frame is written at once (the last turn carried at most one frame). */
  private eager = true;
  /** Batchable frames pushed this turn (those written at once or flushed early included). */
  private turnFrames = 0;
  private readonly flushLater = () => {
    this.scheduled = false;
    // A busy stream (more than one frame last turn) batches from the first frame on; a quiet one writes it at once.
    this.eager = this.turnFrames <= 1;
    this.turnFrames = 0;
    this.flush();
  };

  constructor(private readonly options: FrameBatcherOptions<F>) {
    this.defer = options.defer ?? ((flush) => setImmediate(flush));
  }

  /** Queues a frame (or, on a quiet stream, writes it now); it is written within this turn of the event loop, in order. */
  push(frame: F): void {
    if (this.closed) return;
    const size = this.options.sizeOf(frame);
    if (size >= SOLO_FRAME_BYTES) {
      // Large payloads go alone, after whatever was queued before them.
      this.flush();
      this.options.write(frame);
      return;
    }
    this.turnFrames++;
    if (!this.scheduled && this.eager) {
      // An idle stream: the turn's first frame goes out now, so a lone call is not held
      // for the rest of the turn; any more frames this turn are batched after it.
      this.scheduled = true;
      this.defer(this.flushLater);
      this.options.write(frame);
      return;
    }
    if (this.pending.length >= MAX_BATCH_FRAMES || this.bytes + size > MAX_BATCH_BYTES) this.flush();
    this.pending.push(frame);
    this.bytes += size;
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.flushLater);
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    const frames = this.pending;
    if (frames.length === 0) return;
    this.pending = [];
    this.bytes = 0;
    this.options.write(frames.length === 1 ? frames[0]! : this.options.batch(frames));
  }

  /** Drops what is queued and accepts nothing more (the stream is gone). */
  close(): void {
    this.closed = true;
    this.pending = [];
    this.bytes = 0;
  }
}

/** Calls `handle` for each frame a (possibly batch) frame carries, in order. */
export function unbatch<F extends { batch?: { frames: F[] } | undefined }>(frame: F, handle: (frame: F) => void): void {
  if (frame.batch === undefined) {
    handle(frame);
    return;
  }
  // No sender nests batches; a nested one is ignored rather than followed down.
  for (const inner of frame.batch.frames) if (inner.batch === undefined) handle(inner);
}
