// Turns chunks of call rows into INSERTs, and applies retention. The same code runs on
// the writer thread (a file database) and on the gateway's thread (':memory:', which
// no second connection can reach); it has no state beyond its prepared statements.
import type { SqliteDatabase, SqliteStatement, SqliteTransaction } from './sqlite.js';
import { FLAG_CACHED, FLAG_SUCCESS, I_CALLER, I_CLIENT, I_ERROR_CODE, I_FLAGS, I_FUNCTION, I_NODE, I_STRATEGY, IDS_PER_ROW, N_ATTEMPTS, N_EXEC_MS, N_FINISHED_AT, N_QUEUE_WAIT_MS, N_REQUEST_BYTES, N_RESPONSE_BYTES, N_TOTAL_MS, NUMBERS_PER_ROW, type ChunkData } from './call-chunk.js';
import type { NodeEvent } from './call-record.js';

/** Rows per multi-row INSERT: one bind-and-step per 50 rows roughly halves the CPU of one per row. */
const ROWS_PER_INSERT = 50;
const CALL_FIELDS = 15;

export const CALL_COLUMNS =
  'finished_at, function_name, node_id, strategy, client, queue_wait_ms, exec_ms, total_ms, success, error_code, cached, request_bytes, response_bytes, attempts, caller';
export const EVENT_COLUMNS = 'at, node_id, kind, function_name, detail';

export interface RetentionResult {
  deletedCalls: number;
  deletedEvents: number;
}

/** Rows [from, to) of one chunk. */
export interface ChunkPart {
  chunk: ChunkData;
  from: number;
  to: number;
}

// SQLite binds NaN as NULL, which fails NOT NULL and would lose the whole batch for one
// bad figure; coerce here so recording stays a bare copy.
function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

/** An error's text with its SQLite code in front, as health() reports it. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export class ChunkWriter {
  private readonly insertCall: SqliteStatement;
  private readonly insertCalls: SqliteStatement;
  private readonly insertEvent: SqliteStatement;
  private readonly params: unknown[] = new Array(ROWS_PER_INSERT * CALL_FIELDS);
  private readonly one: unknown[] = new Array(CALL_FIELDS);
  private readonly batch: SqliteTransaction<(parts: readonly ChunkPart[], events: readonly NodeEvent[]) => void>;

  constructor(readonly db: SqliteDatabase) {
    const placeholders = (n: number) => Array.from({ length: n }, () => `(${Array(CALL_FIELDS).fill('?').join(', ')})`).join(', ');
    this.insertCall = db.prepare(`INSERT INTO calls (${CALL_COLUMNS}) VALUES ${placeholders(1)}`);
    this.insertCalls = db.prepare(`INSERT INTO calls (${CALL_COLUMNS}) VALUES ${placeholders(ROWS_PER_INSERT)}`);
    this.insertEvent = db.prepare(`INSERT INTO node_events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)`);
    this.batch = db.transaction((parts: readonly ChunkPart[], events: readonly NodeEvent[]) => {
      let pending = 0;
      for (const { chunk, from, to } of parts) {
        for (let row = from; row < to; row++) {
          this.fill(chunk, row, this.params, pending * CALL_FIELDS);
          if (++pending === ROWS_PER_INSERT) {
            this.insertCalls.run(this.params);
            pending = 0;
          }
        }
      }
      for (let i = 0; i < pending; i++) {
        for (let f = 0; f < CALL_FIELDS; f++) this.one[f] = this.params[i * CALL_FIELDS + f];
        this.insertCall.run(this.one);
      }
      for (const e of events) this.insertEvent.run(num(e.at), str(e.nodeId), str(e.kind), str(e.functionName), str(e.detail));
    });
  }

  /**
   * Writes the parts' rows and `events` in one transaction, all or nothing. IMMEDIATE
   * takes the write lock up front, so a busy database fails at BEGIN (after the busy
   * timeout) rather than half-way through. Throws what SQLite throws.
   */
  write(parts: readonly ChunkPart[], events: readonly NodeEvent[]): void {
    this.batch.immediate(parts, events);
  }

  private fill(c: ChunkData, row: number, out: unknown[], at: number): void {
    const n = row * NUMBERS_PER_ROW;
    const k = row * IDS_PER_ROW;
    const strings = c.strings;
    out[at] = num(c.numbers[n + N_FINISHED_AT]);
    out[at + 1] = strings[c.ids[k + I_FUNCTION]!];
    out[at + 2] = strings[c.ids[k + I_NODE]!];
    out[at + 3] = strings[c.ids[k + I_STRATEGY]!];
    out[at + 4] = strings[c.ids[k + I_CLIENT]!];
    out[at + 5] = num(c.numbers[n + N_QUEUE_WAIT_MS]);
    out[at + 6] = num(c.numbers[n + N_EXEC_MS]);
    out[at + 7] = num(c.numbers[n + N_TOTAL_MS]);
    out[at + 8] = c.ids[k + I_FLAGS]! & FLAG_SUCCESS ? 1 : 0;
    out[at + 9] = strings[c.ids[k + I_ERROR_CODE]!];
    out[at + 10] = c.ids[k + I_FLAGS]! & FLAG_CACHED ? 1 : 0;
    out[at + 11] = num(c.numbers[n + N_REQUEST_BYTES]);
    out[at + 12] = num(c.numbers[n + N_RESPONSE_BYTES]);
    out[at + 13] = num(c.numbers[n + N_ATTEMPTS]);
    out[at + 14] = strings[c.ids[k + I_CALLER]!];
  }
}

/**
 * Deletes rows older than `cutoff` (epoch ms) and beyond the newest `maxRows` per table,
 * in one transaction. Throws what SQLite throws.
 */
export function deleteExpired(db: SqliteDatabase, cutoff: number | undefined, maxRows: number | undefined): RetentionResult {
  const result: RetentionResult = { deletedCalls: 0, deletedEvents: 0 };
  db.transaction(() => {
    if (cutoff !== undefined) {
      result.deletedCalls += db.prepare('DELETE FROM calls WHERE finished_at < ?').run(cutoff).changes;
      result.deletedEvents += db.prepare('DELETE FROM node_events WHERE at < ?').run(cutoff).changes;
    }
    if (maxRows !== undefined) {
      // Ids grow with insertion, so "the newest N" is "id above the (N+1)-th newest id".
      result.deletedCalls += db.prepare('DELETE FROM calls WHERE id <= (SELECT id FROM calls ORDER BY id DESC LIMIT 1 OFFSET ?)').run(maxRows).changes;
      result.deletedEvents += db.prepare('DELETE FROM node_events WHERE id <= (SELECT id FROM node_events ORDER BY id DESC LIMIT 1 OFFSET ?)').run(maxRows).changes;
    }
  }).immediate();
  return result;
}
