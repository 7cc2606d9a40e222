// Server-sent events for the dashboard (GET /api/events): a snapshot of the whole picture
// once per interval, built and serialised once per tick whatever the number of readers.
// Each message carries everything, so a reader that misses one loses nothing but a
// moment: a reader that does not keep up is skipped rather than buffered for, and one
// that takes nothing for a long time is disconnected.
import type { ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../clock.js';

export const DEFAULT_EVENT_INTERVAL_MS = 1_000;
/** Streams open at once; more are refused with 503 (each costs a snapshot per second). */
export const DEFAULT_MAX_EVENT_STREAMS = 16;
/** A stream whose buffered snapshot has not reached its reader for this long is closed. */
export const DEFAULT_EVENT_STALL_MS = 30_000;
/** What the stream tells EventSource readers to wait before reconnecting. */
export const EVENT_RETRY_MS = 2_000;
/** What a refused reader is told to wait, in seconds (Retry-After). */
export const EVENT_REFUSED_RETRY_S = 5;

export interface EventStreamOptions {
  intervalMs?: number;
  maxStreams?: number;
  stallMs?: number;
}

interface Reader {
  readonly res: ServerResponse;
  /** Clock time when a write last found the buffer full; undefined while the reader keeps up. */
  blockedSince: number | undefined;
}

export class EventStream {
  private readonly readers = new Set<Reader>();
  private readonly intervalMs: number;
  private readonly maxStreams: number;
  private readonly stallMs: number;
  private timer: TimerHandle | undefined;
  private last: { frame: string; at: number } | undefined;
  private sequence = 0;

  constructor(
    private readonly snapshot: () => unknown,
    private readonly clock: Clock,
    options: EventStreamOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_EVENT_INTERVAL_MS;
    this.maxStreams = options.maxStreams ?? DEFAULT_MAX_EVENT_STREAMS;
    this.stallMs = options.stallMs ?? DEFAULT_EVENT_STALL_MS;
    for (const [name, v] of Object.entries({ intervalMs: this.intervalMs, maxStreams: this.maxStreams, stallMs: this.stallMs })) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`event stream: ${name} must be a number > 0, got ${v}`);
    }
  }

  /** Streams open now. */
  get size(): number {
    return this.readers.size;
  }

  /** Answers an authorised GET /api/events: a stream, or 503 when maxStreams are open. */
  accept(res: ServerResponse): void {
    if (this.readers.size >= this.maxStreams) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': String(EVENT_REFUSED_RETRY_S) });
      res.end(JSON.stringify({ error: 'RESOURCE_EXHAUSTED', message: `at most ${this.maxStreams} event streams may be open at once; try again later` }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Proxies such as nginx would otherwise hold the events back to fill their buffer.
      'x-accel-buffering': 'no',
    });
    const reader: Reader = { res, blockedSince: undefined };
    this.readers.add(reader);
    res.on('drain', () => (reader.blockedSince = undefined));
    res.on('close', () => this.readers.delete(reader));
    res.write(`retry: ${EVENT_RETRY_MS}\n\n`);
    // A new reader gets the picture at once rather than at the next tick.
    const now = this.clock.now();
    if (this.last === undefined || now - this.last.at >= this.intervalMs) this.last = { frame: this.frame(), at: now };
    this.write(reader, this.last.frame, now);
    if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
  }

  /** Ends every stream and the ticks. */
  close(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const reader of this.readers) reader.res.end();
    this.readers.clear();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.readers.size === 0) return;
    const now = this.clock.now();
    this.last = { frame: this.frame(), at: now };
    for (const reader of [...this.readers]) this.write(reader, this.last.frame, now);
    if (this.readers.size > 0) this.timer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
  }

  /** At most one snapshot waits in a reader's buffer: while it waits, newer ones are skipped. */
  private write(reader: Reader, frame: string, now: number): void {
    if (reader.blockedSince !== undefined) {
      if (now - reader.blockedSince >= this.stallMs) {
        this.readers.delete(reader);
        reader.res.destroy();
      }
      return;
    }
    if (!reader.res.write(frame)) reader.blockedSince = now;
  }

  private frame(): string {
    const id = ++this.sequence;
    try {
      // JSON.stringify escapes every line break, so the document is one data line.
      return `id: ${id}\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot(), (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n\n`;
    } catch (err) {
      return `id: ${id}\nevent: failure\ndata: ${JSON.stringify({ message: `the snapshot could not be built: ${(err as Error).message}` })}\n\n`;
    }
  }
}
