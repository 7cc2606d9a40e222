// A batch of call rows kept in columns: the numbers of a row in one Float64Array, its
// strings as small integer ids into the batch's own dictionary. Recording a call writes
// a few slots and allocates nothing that outlives it, and a full batch crosses to the
// writer thread by transferring two buffers, not by copying rows.
import type { CallRecord, NodeEvent } from './call-record.js';

/** Rows per chunk: a chunk is handed to the writer when full, or on the flush timer. */
export const CHUNK_ROWS = 4096;

// Number slots of a row, in this order.
export const N_FINISHED_AT = 0;
export const N_QUEUE_WAIT_MS = 1;
export const N_EXEC_MS = 2;
export const N_TOTAL_MS = 3;
export const N_REQUEST_BYTES = 4;
export const N_RESPONSE_BYTES = 5;
export const N_ATTEMPTS = 6;
export const NUMBERS_PER_ROW = 7;

// Id slots of a row: dictionary ids of its strings, then its flags.
export const I_FUNCTION = 0;
export const I_NODE = 1;
export const I_STRATEGY = 2;
export const I_CLIENT = 3;
export const I_ERROR_CODE = 4;
export const I_CALLER = 5;
export const I_FLAGS = 6;
export const IDS_PER_ROW = 7;

export const FLAG_SUCCESS = 1;
export const FLAG_CACHED = 2;

/** A chunk as the writer receives it. Only the first `rows` rows of the arrays are meaningful. */
export interface ChunkData {
  rows: number;
  numbers: Float64Array;
  ids: Uint32Array;
  /** Dictionary: id → string. Id 0 is ''. */
  strings: string[];
  events: NodeEvent[];
}

/** Buffers a chunk can be built on (the writer hands them back once written). */
export interface ChunkBuffers {
  numbers: ArrayBuffer;
  ids: ArrayBuffer;
}

export class CallChunk implements ChunkData {
  rows = 0;
  readonly numbers: Float64Array;
  readonly ids: Uint32Array;
  readonly strings: string[] = [''];
  readonly events: NodeEvent[] = [];
  private readonly index = new Map<unknown, number>();
  // One-entry caches: consecutive calls mostly share their strategy, client and caller.
  private lastStrategy = '';
  private lastStrategyId = 0;
  private lastClient = '';
  private lastClientId = 0;
  private lastCaller = '';
  private lastCallerId = 0;

  constructor(
    readonly capacity: number,
    buffers?: ChunkBuffers,
  ) {
    const fits = buffers !== undefined && buffers.numbers.byteLength >= capacity * NUMBERS_PER_ROW * 8 && buffers.ids.byteLength >= capacity * IDS_PER_ROW * 4;
    this.numbers = fits ? new Float64Array(buffers.numbers, 0, capacity * NUMBERS_PER_ROW) : new Float64Array(capacity * NUMBERS_PER_ROW);
    this.ids = fits ? new Uint32Array(buffers.ids, 0, capacity * IDS_PER_ROW) : new Uint32Array(capacity * IDS_PER_ROW);
  }

  get full(): boolean {
    return this.rows >= this.capacity;
  }

  get empty(): boolean {
    return this.rows === 0 && this.events.length === 0;
  }

  /** Copies one row in; the caller checks `full` first. Keeps no reference to `r`. */
  append(r: CallRecord): void {
    const n = this.rows * NUMBERS_PER_ROW;
    const numbers = this.numbers;
    numbers[n + N_FINISHED_AT] = r.finishedAt;
    numbers[n + N_QUEUE_WAIT_MS] = r.queueWaitMs;
    numbers[n + N_EXEC_MS] = r.execMs;
    numbers[n + N_TOTAL_MS] = r.totalMs;
    numbers[n + N_REQUEST_BYTES] = r.requestBytes;
    numbers[n + N_RESPONSE_BYTES] = r.responseBytes;
    numbers[n + N_ATTEMPTS] = r.attempts;
    const k = this.rows * IDS_PER_ROW;
    const ids = this.ids;
    ids[k + I_FUNCTION] = this.id(r.functionName);
    ids[k + I_NODE] = r.nodeId === '' ? 0 : this.id(r.nodeId);
    if (r.strategy !== this.lastStrategy) {
      this.lastStrategy = r.strategy;
      this.lastStrategyId = this.id(r.strategy);
    }
    ids[k + I_STRATEGY] = this.lastStrategyId;
    if (r.client !== this.lastClient) {
      this.lastClient = r.client;
      this.lastClientId = this.id(r.client);
    }
    ids[k + I_CLIENT] = this.lastClientId;
    if (r.caller !== this.lastCaller) {
      this.lastCaller = r.caller;
      this.lastCallerId = this.id(r.caller);
    }
    ids[k + I_CALLER] = this.lastCallerId;
    ids[k + I_ERROR_CODE] = r.errorCode === '' ? 0 : this.id(r.errorCode);
    ids[k + I_FLAGS] = (r.success ? FLAG_SUCCESS : 0) | (r.cached ? FLAG_CACHED : 0);
    this.rows++;
  }

  /** The dictionary id of `s`, adding it on first sight. Anything not a string is stored as its text ('' for none). */
  private id(s: string): number {
    let id = this.index.get(s);
    if (id === undefined) {
      const text = typeof s === 'string' ? s : s === undefined || s === null ? '' : String(s);
      id = text === '' ? 0 : this.strings.push(text) - 1;
      this.index.set(s, id);
    }
    return id;
  }

  /** What travels to the writer (the buffers are transferred, the rest copied). */
  data(): ChunkData {
    return { rows: this.rows, numbers: this.numbers, ids: this.ids, strings: this.strings, events: this.events };
  }
}
