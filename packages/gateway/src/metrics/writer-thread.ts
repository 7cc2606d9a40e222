// The thread that writes metrics rows into database files, so that neither binding rows
// nor committing them costs the gateway's thread anything. One per process, started by
// the first store that needs it; each store has its own connection there and its own
// channel. Chunks cross by transfer and their outcomes come back as messages. A store
// that must answer now (flush, retention, close) waits for its answers with Atomics.wait
// on a word the thread bumps after each one, then takes them off its channel with
// receiveMessageOnPort: the same answers, in the same order, as the asynchronous path.
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { ChunkBuffers, ChunkData } from './call-chunk.js';
import type { RetentionResult } from './store-writer.js';

/** How long a store waits for the thread to answer before it reports the thread as stuck. */
export const WRITER_ANSWER_TIMEOUT_MS = 30_000;
/** A thread left with no store ends after this long, unless a new store arrives first. */
export const WRITER_IDLE_MS = 5_000;

export interface WriterError {
  message: string;
  code?: string;
}

export type WriterRequest =
  | { op: 'write'; seq: number; chunk: ChunkData }
  | { op: 'retention'; seq: number; cutoff: number | undefined; maxRows: number | undefined }
  | { op: 'sync'; seq: number }
  | { op: 'close'; seq: number };

/** Every request gets one answer with its seq; `rows` of a write counts its calls and events. */
export type WriterAnswer =
  | { op: 'opened'; seq: number; error?: WriterError }
  | { op: 'written'; seq: number; rows: number; buffers: ChunkBuffers; error?: WriterError }
  | { op: 'retained'; seq: number; result: RetentionResult; error?: WriterError }
  | { op: 'synced'; seq: number }
  | { op: 'closed'; seq: number };

export interface OpenRequest {
  op: 'open';
  port: MessagePort;
  /** answered[0] is the seq of the last answer sent. */
  answered: Int32Array;
  path: string;
  busyTimeoutMs: number;
}

// Running from TypeScript sources (tsx, vitest) the entry is .ts; from dist it is .js.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './writer-thread-entry.ts' : './writer-thread-entry.js', import.meta.url);

/** Worker threads do not inherit tsx's loader: from sources, a tiny bootstrap registers it first. */
function createWorker(): Worker {
  if (!FROM_SOURCE) return new Worker(ENTRY);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ENTRY.href)}); });`;
  return new Worker(boot, { eval: true });
}

interface SharedThread {
  worker: Worker;
  links: Set<WriterLink>;
  idle: NodeJS.Timeout | undefined;
}

let shared: SharedThread | undefined;

function thread(): SharedThread {
  if (shared !== undefined) {
    clearTimeout(shared.idle);
    shared.idle = undefined;
    return shared;
  }
  const worker = createWorker();
  // Idle, it must not keep the process alive; stores flush on close, not at exit.
  worker.unref();
  const t: SharedThread = { worker, links: new Set(), idle: undefined };
  const died = (why: string) => {
    if (shared === t) shared = undefined;
    for (const link of t.links) link.threadDied(why);
    t.links.clear();
  };
  worker.on('error', (err) => died(err.message));
  worker.on('exit', (code) => died(`the metrics writer thread exited (code ${code})`));
  shared = t;
  return t;
}

function release(t: SharedThread, link: WriterLink): void {
  t.links.delete(link);
  if (t.links.size > 0 || shared !== t) return;
  t.idle = setTimeout(() => {
    if (shared === t && t.links.size === 0) {
      shared = undefined;
      void t.worker.terminate();
    }
  }, WRITER_IDLE_MS);
  t.idle.unref();
}

/** Thrown by WriterLink's constructor when the thread cannot open the database. */
export class WriterOpenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** One store's connection on the writer thread. */
export class WriterLink {
  private readonly thread: SharedThread;
  private readonly port: MessagePort;
  private readonly answered = new Int32Array(new SharedArrayBuffer(4));
  private seq = 1;
  private deadReason: string | undefined;
  private closed = false;

  /** Opens `path` on the thread, waiting for it; throws WriterOpenError when the thread cannot. */
  constructor(
    path: string,
    busyTimeoutMs: number,
    private readonly handlers: { answer: (a: WriterAnswer) => void; died: (why: string) => void },
  ) {
    this.thread = thread();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const open: OpenRequest = { op: 'open', port: port2, answered: this.answered, path, busyTimeoutMs };
    this.thread.worker.postMessage(open, [port2]);
    this.thread.links.add(this);
    let opened: WriterAnswer | undefined;
    if (this.wait(1)) opened = receiveMessageOnPort(port1)?.message as WriterAnswer | undefined;
    if (opened?.op !== 'opened' || opened.error !== undefined) {
      this.detach();
      const error = opened?.op === 'opened' ? opened.error : undefined;
      throw new WriterOpenError(error?.message ?? this.deadReason ?? `the metrics writer thread did not start in ${WRITER_ANSWER_TIMEOUT_MS} ms`, error?.code);
    }
    port1.on('message', (a: WriterAnswer) => this.handlers.answer(a));
    // Answers still arrive while the process lives; the channel alone must not keep it alive.
    port1.unref();
  }

  /** Whether the thread can still take requests. */
  get alive(): boolean {
    return this.deadReason === undefined && !this.closed;
  }

  /** Hands a chunk to the thread; its buffers move there (the chunk is unusable here after). */
  write(chunk: ChunkData): void {
    this.post({ op: 'write', seq: ++this.seq, chunk }, [chunk.numbers.buffer as ArrayBuffer, chunk.ids.buffer as ArrayBuffer]);
  }

  retention(cutoff: number | undefined, maxRows: number | undefined): void {
    this.post({ op: 'retention', seq: ++this.seq, cutoff, maxRows });
  }

  /**
   * Waits until every request sent so far has its answer, handing each to the answer
   * handler before returning. False when the thread is gone or did not answer in time.
   */
  settle(): boolean {
    if (!this.alive) return false;
    this.post({ op: 'sync', seq: ++this.seq });
    const ok = this.wait(this.seq);
    this.drain();
    return ok;
  }

  /** Closes the connection (after every earlier request) and leaves the thread. */
  close(): boolean {
    if (!this.alive) {
      this.detach();
      return false;
    }
    this.post({ op: 'close', seq: ++this.seq });
    const ok = this.wait(this.seq);
    this.drain();
    this.detach();
    return ok;
  }

  /** Called by the thread's owner when the thread ended. */
  threadDied(why: string): void {
    if (this.deadReason !== undefined || this.closed) return;
    this.deadReason = why;
    this.handlers.died(why);
  }

  private post(request: WriterRequest, transfer?: ArrayBuffer[]): void {
    this.port.postMessage(request, transfer);
  }

  private wait(seq: number): boolean {
    const deadline = Date.now() + WRITER_ANSWER_TIMEOUT_MS;
    for (;;) {
      const seen = Atomics.load(this.answered, 0);
      if (seen >= seq) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.answered, 0, seen, left);
    }
  }

  private drain(): void {
    for (;;) {
      const received = receiveMessageOnPort(this.port);
      if (received === undefined) return;
      this.handlers.answer(received.message as WriterAnswer);
    }
  }

  private detach(): void {
    if (this.closed) return;
    this.closed = true;
    this.port.close();
    release(this.thread, this);
  }
}
