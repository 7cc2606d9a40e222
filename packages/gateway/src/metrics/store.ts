// The embedded history of finished calls and node events. Recording copies a row into
// a columnar chunk (call-chunk.ts) and never touches the disk; a full chunk, or the flush
// timer, hands the chunk to the writer thread (writer-thread.ts), which has its own
// connection and commits it there. So a call never waits on SQLite, the gateway's thread
// spends nothing on binding or committing rows, and a disk problem never becomes a call
// failure: it becomes dropped rows and a health() report. Queries run here, on this
// store's own connection (WAL lets it read while the writer writes).
//
// ':memory:' cannot be opened by a second connection, so an in-memory store writes on
// the gateway's thread instead, a bounded batch per event-loop turn.
import type { MetricsHealth } from '@easyremote/protocol';
export type { MetricsHealth };
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';
import { CallChunk, CHUNK_ROWS, type ChunkBuffers } from './call-chunk.js';
import type { CallRecord, NodeEvent, NodeEventKind } from './call-record.js';
import { computeStatistics, type MetricsStatistics } from './stats.js';
import { CALL_COLUMNS, ChunkWriter, deleteExpired, errorMessage, EVENT_COLUMNS, type ChunkPart, type RetentionResult } from './store-writer.js';
import { WRITER_ANSWER_TIMEOUT_MS, WriterLink, type WriterAnswer, type WriterError } from './writer-thread.js';

export type { RetentionResult };
export const DEFAULT_FLUSH_INTERVAL_MS = 250;
export const DEFAULT_MAX_BUFFER_ROWS = 50_000;
/**
 * For ':memory:' (written on the gateway's thread): rows the timer writes per event-loop
 * turn (a few ms at a few µs per row); the rest follows on the next turns, so a backlog
 * never stalls the calls in flight for long. The writer thread takes whole chunks.
 */
export const DEFAULT_MAX_ROWS_PER_FLUSH = 5_000;
export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
/** Statistics with no window given cover the last hour. */
export const DEFAULT_STATS_WINDOW_MS = 3_600_000;
export const DEFAULT_QUERY_LIMIT = 1_000;
/**
 * How long a write waits for another connection's lock. Kept short on purpose: flush()
 * and stop() wait for the writer, and ':memory:' writes on the gateway's event loop, so
 * waiting the driver's default 5 s could stall the gateway. A busy flush drops its batch
 * and the next flush tries again.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 20;

export interface RetentionOptions {
  /** Rows older than this (by finishedAt / at) are deleted. */
  maxAgeMs?: number;
  /** Keep at most this many rows per table, the newest by insertion. */
  maxRows?: number;
}

export interface MetricsStoreOptions {
  /** File path, or ':memory:' (tests, or history that need not survive a restart). */
  path: string;
  flushIntervalMs?: number;
  /** Rows held and not yet written (the writer's backlog included); beyond it new rows are dropped and counted. */
  maxBufferRows?: number;
  /** ':memory:' only: rows the timer writes per event-loop turn; flush() and close() write everything. */
  maxRowsPerFlush?: number;
  retention?: RetentionOptions;
  retentionIntervalMs?: number;
  busyTimeoutMs?: number;
  clock?: () => number;
  /** Told about every runtime failure (write or retention); the store never throws them. */
  onError?: (error: Error) => void;
}

export interface CallQuery {
  /** Exclusive lower bound on finishedAt. */
  since?: number;
  /** Inclusive upper bound on finishedAt. */
  until?: number;
  functionName?: string;
  nodeId?: string;
  /** Calls made by this principal ('' for the anonymous one). */
  caller?: string;
  limit?: number;
  /** Default 'desc' (newest first). */
  order?: 'asc' | 'desc';
}

export interface EventQuery {
  /** Exclusive lower bound on `at`. */
  since?: number;
  nodeId?: string;
  kind?: NodeEventKind;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface StatsWindowInput {
  /** Exclusive; default until - DEFAULT_STATS_WINDOW_MS. */
  since?: number;
  /** Inclusive; default now. */
  until?: number;
}

/** One schema step. A new schema version is one more entry at the end of MIGRATIONS. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly up: string | ((db: SqliteDatabase) => void);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'calls and node_events',
    up: `
      CREATE TABLE calls (
        id             INTEGER PRIMARY KEY,
        finished_at    INTEGER NOT NULL,
        function_name  TEXT    NOT NULL,
        node_id        TEXT    NOT NULL,
        strategy       TEXT    NOT NULL,
        client         TEXT    NOT NULL,
        queue_wait_ms  REAL    NOT NULL,
        exec_ms        REAL    NOT NULL,
        total_ms       REAL    NOT NULL,
        success        INTEGER NOT NULL,
        error_code     TEXT    NOT NULL,
        cached         INTEGER NOT NULL,
        request_bytes  INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL,
        attempts       INTEGER NOT NULL
      );
      -- Every read is "a time window", optionally for one function or one node.
      CREATE INDEX calls_by_time     ON calls (finished_at);
      CREATE INDEX calls_by_function ON calls (function_name, finished_at);
      CREATE INDEX calls_by_node     ON calls (node_id, finished_at);

      CREATE TABLE node_events (
        id            INTEGER PRIMARY KEY,
        at            INTEGER NOT NULL,
        node_id       TEXT    NOT NULL,
        kind          TEXT    NOT NULL,
        function_name TEXT    NOT NULL,
        detail        TEXT    NOT NULL
      );
      CREATE INDEX node_events_by_time ON node_events (at);
      CREATE INDEX node_events_by_node ON node_events (node_id, at);
    `,
  },
  {
    version: 2,
    // No index: per-caller figures scan the time window like the summary does, and every
    // index costs the writer per row.
    description: 'calls.caller: the authenticated principal',
    up: `ALTER TABLE calls ADD COLUMN caller TEXT NOT NULL DEFAULT ''`,
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings `db` up to the last of `migrations`, one transaction per step, so a failed
 * step leaves the previous version intact. Returns the versions applied (empty when
 * the database was already current). Refuses a database written by a newer build.
 */
export function migrate(db: SqliteDatabase, migrations: readonly Migration[] = MIGRATIONS, now: number = Date.now()): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL, description TEXT NOT NULL)');
  const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version').get() as { v: number }).v;
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  if (current > latest) {
    throw new Error(`schema version ${current} is newer than this build understands (${latest})`);
  }
  const record = db.prepare('INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)');
  const applied: number[] = [];
  let previous = 0;
  for (const step of migrations) {
    if (step.version <= previous) throw new Error(`migrations must have increasing versions (${step.version} after ${previous})`);
    previous = step.version;
    if (step.version <= current) continue;
    db.transaction(() => {
      if (typeof step.up === 'string') db.exec(step.up);
      else step.up(db);
      record.run(step.version, now, step.description);
    }).immediate();
    applied.push(step.version);
  }
  return applied;
}

interface CallRow {
  finished_at: number;
  function_name: string;
  node_id: string;
  strategy: string;
  client: string;
  caller: string;
  queue_wait_ms: number;
  exec_ms: number;
  total_ms: number;
  success: number;
  error_code: string;
  cached: number;
  request_bytes: number;
  response_bytes: number;
  attempts: number;
}

interface EventRow {
  at: number;
  node_id: string;
  kind: string;
  function_name: string;
  detail: string;
}

function describeOpenFailure(path: string, err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  let what: string;
  switch (code) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      what = 'is not a valid SQLite file';
      break;
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
    case 'SQLITE_IOERR':
      what = 'cannot be opened for writing';
      break;
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      what = 'is locked by another connection';
      break;
    default:
      what = 'could not be opened';
  }
  return new Error(`metrics database ${path} ${what}: ${errorMessage(err)}`, { cause: err });
}

// better-sqlite3 reports a missing directory or a directory path with a generic
// "unable to open database file"; check first so the error names the real cause.
function checkWritablePath(path: string): void {
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  const full = resolve(path);
  const dir = dirname(full);
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch (err) {
    throw new Error(`metrics database ${path} cannot be opened for writing: directory ${dir} does not exist or cannot be read (${errorMessage(err)})`, { cause: err });
  }
  if (!dirStat.isDirectory()) {
    throw new Error(`metrics database ${path} cannot be opened for writing: ${dir} is not a directory`);
  }
  let fileStat;
  try {
    fileStat = statSync(full);
  } catch {
    fileStat = undefined;
  }
  if (fileStat?.isDirectory()) {
    throw new Error(`metrics database ${path} cannot be opened for writing: the path is a directory`);
  }
  try {
    // WAL mode creates -wal and -shm files beside the database, so the directory must be writable too.
    accessSync(dir, fsConstants.W_OK);
    if (fileStat !== undefined) accessSync(full, fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    throw new Error(`metrics database ${path} cannot be opened for writing: ${errorMessage(err)}`, { cause: err });
  }
}

function toCallRecord(row: CallRow): CallRecord {
  return {
    finishedAt: row.finished_at,
    functionName: row.function_name,
    nodeId: row.node_id,
    strategy: row.strategy,
    client: row.client,
    caller: row.caller,
    queueWaitMs: row.queue_wait_ms,
    execMs: row.exec_ms,
    totalMs: row.total_ms,
    success: row.success !== 0,
    errorCode: row.error_code,
    cached: row.cached !== 0,
    requestBytes: row.request_bytes,
    responseBytes: row.response_bytes,
    attempts: row.attempts,
  };
}

function toNodeEvent(row: EventRow): NodeEvent {
  return { at: row.at, nodeId: row.node_id, kind: row.kind as NodeEventKind, functionName: row.function_name, detail: row.detail };
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return Math.floor(value);
}


/** Chunk buffers kept for reuse once the writer hands them back. */
const SPARE_CHUNKS = 4;

/** Stands in for the writer thread's error (which crossed as data) as a cause. */
function threadError(e: WriterError): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

export class MetricsStore {
  /** This store's connection: every query, and for ':memory:' every write too. */
  private readonly db: SqliteDatabase;
  /** The writer thread's connection, for a file. */
  private readonly link: WriterLink | undefined;
  /** The writer on this thread, for ':memory:'. */
  private readonly inline: ChunkWriter | undefined;
  private readonly clock: () => number;
  private readonly maxBufferRows: number;
  private readonly maxRowsPerFlush: number;
  private readonly chunkRows: number;
  private readonly retention: RetentionOptions;
  private readonly onError: ((error: Error) => void) | undefined;
  private readonly countCallsStmt: SqliteStatement;
  private readonly queryCache = new Map<string, SqliteStatement>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout | undefined;
  private continuation: NodeJS.Immediate | undefined;

  /** The chunk rows are recorded into. */
  private chunk: CallChunk;
  private readonly spare: ChunkBuffers[] = [];
  /** ':memory:' only: full chunks waiting for the timer, and the rows of the first already written. */
  private readonly sealed: CallChunk[] = [];
  private sealedOffset = 0;
  /** Rows and events taken and not yet written or dropped. */
  private buffered = 0;
  /** Of those, the ones with the writer thread, unanswered. */
  private sent = 0;
  private retained: RetentionResult | undefined;
  private closed = false;
  private ok = true;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private droppedOnOverflow = 0;
  private droppedOnWriteError = 0;
  private droppedAfterClose = 0;
  private writtenRows = 0;

  readonly path: string;

  /** Opens (or creates) the database and migrates it; throws a clear Error naming the path when it cannot. */
  constructor(options: MetricsStoreOptions) {
    this.path = options.path;
    this.clock = options.clock ?? Date.now;
    this.maxBufferRows = positiveInt('maxBufferRows', options.maxBufferRows, DEFAULT_MAX_BUFFER_ROWS);
    this.maxRowsPerFlush = positiveInt('maxRowsPerFlush', options.maxRowsPerFlush, DEFAULT_MAX_ROWS_PER_FLUSH);
    this.chunkRows = Math.min(CHUNK_ROWS, this.maxBufferRows);
    this.retention = {
      maxAgeMs: options.retention?.maxAgeMs === undefined ? undefined : positiveInt('retention.maxAgeMs', options.retention.maxAgeMs, 0),
      maxRows: options.retention?.maxRows === undefined ? undefined : positiveInt('retention.maxRows', options.retention.maxRows, 0),
    };
    this.onError = options.onError;
    const flushIntervalMs = positiveInt('flushIntervalMs', options.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS);
    const retentionIntervalMs = positiveInt('retentionIntervalMs', options.retentionIntervalMs, DEFAULT_RETENTION_INTERVAL_MS);
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;

    checkWritablePath(options.path);
    let db: SqliteDatabase | undefined;
    try {
      db = new Database(options.path, { timeout: busyTimeoutMs });
      // The first statement is what reads the header, so a corrupt file fails here.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, MIGRATIONS, this.clock());
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already failing; the original error is the one worth reporting
      }
      throw describeOpenFailure(options.path, err);
    }
    this.db = db;
    this.countCallsStmt = db.prepare('SELECT COUNT(*) AS n FROM calls');
    this.chunk = new CallChunk(this.chunkRows);

    // Before the writer connects: nothing else writes yet, so this cannot meet our own lock.
    if (this.retention.maxAgeMs !== undefined || this.retention.maxRows !== undefined) this.applyRetentionHere();
    if (options.path === ':memory:' || options.path === '') {
      this.inline = new ChunkWriter(db);
    } else {
      try {
        this.link = new WriterLink(options.path, busyTimeoutMs, { answer: (a) => this.answer(a), died: (why) => this.writerDied(why) });
      } catch (err) {
        db.close();
        throw describeOpenFailure(options.path, err);
      }
    }

    this.flushTimer = setInterval(() => this.flushSome(), flushIntervalMs);
    this.flushTimer.unref();
    if (this.retention.maxAgeMs !== undefined || this.retention.maxRows !== undefined) {
      this.retentionTimer = setInterval(() => this.retain(false), retentionIntervalMs);
      this.retentionTimer.unref();
    }
  }

  /** Copies one finished call into the current chunk. O(1); keeps no reference to `row`, never touches the disk, never throws. */
  record(row: CallRecord): void {
    if (!this.admit()) return;
    this.chunk.append(row);
    if (this.chunk.full) this.seal();
  }

  /** Buffers one node event, under the same rules as record(). */
  recordEvent(event: NodeEvent): void {
    if (this.admit()) this.chunk.events.push(event);
  }

  /** Whether the buffer takes one more row; counts the row as dropped when not. */
  private admit(): boolean {
    if (this.closed) {
      this.droppedAfterClose++;
      return false;
    }
    if (this.buffered >= this.maxBufferRows) {
      this.droppedOnOverflow++;
      return false;
    }
    this.buffered++;
    return true;
  }

  /** Ends the current chunk: to the writer thread at once, or (':memory:') into the queue the timer writes. */
  private seal(): void {
    if (this.chunk.empty) return;
    const chunk = this.chunk;
    this.chunk = new CallChunk(this.chunkRows, this.spare.pop());
    if (this.link === undefined) {
      this.sealed.push(chunk);
      return;
    }
    const n = chunk.rows + chunk.events.length;
    if (!this.link.alive) {
      this.dropped(n, `metrics write failed, ${n} rows dropped: the metrics writer thread is gone`, undefined);
      return;
    }
    this.sent += n;
    this.link.write(chunk.data());
  }

  /**
   * Writes the whole buffer now and waits for it. Returns the rows written meanwhile; on
   * failure a batch is dropped and counted (retrying it would grow the buffer without
   * bound while the disk stays full) and the error is kept for health().
   */
  flush(): number {
    const before = this.writtenRows;
    this.seal();
    if (this.link !== undefined) {
      if (this.sent > 0) this.settle();
    } else {
      this.writeHere(Infinity);
    }
    return this.writtenRows - before;
  }

  // The timer's flush. ':memory:' writes one bounded batch per event-loop turn until the buffer is empty.
  private flushSome(): void {
    this.seal();
    if (this.link !== undefined) return;
    const written = this.writeHere(this.maxRowsPerFlush);
    // After a failure, wait for the next tick: each try may wait out the busy timeout.
    if (written > 0 && this.sealed.length > 0 && this.continuation === undefined && !this.closed) {
      this.continuation = setImmediate(() => {
        this.continuation = undefined;
        this.flushSome();
      });
    }
  }

  /** ':memory:': writes up to `limit` queued rows (and the events of the chunks it finishes) on this thread. */
  private writeHere(limit: number): number {
    if (this.sealed.length === 0 || !this.db.open) return 0;
    const parts: ChunkPart[] = [];
    const events: NodeEvent[] = [];
    let rows = 0;
    let finished = 0;
    let offset = this.sealedOffset;
    for (const chunk of this.sealed) {
      const to = Math.min(chunk.rows, offset + (limit - rows));
      if (to > offset) parts.push({ chunk, from: offset, to });
      rows += to - offset;
      if (to < chunk.rows) {
        offset = to;
        break;
      }
      for (const e of chunk.events) events.push(e);
      finished++;
      offset = 0;
    }
    for (const chunk of this.sealed.splice(0, finished)) if (this.spare.length < SPARE_CHUNKS) this.spare.push({ numbers: chunk.numbers.buffer as ArrayBuffer, ids: chunk.ids.buffer as ArrayBuffer });
    this.sealedOffset = offset;
    const n = rows + events.length;
    if (n === 0) return 0;
    try {
      this.inline!.write(parts, events);
    } catch (err) {
      this.dropped(n, `metrics write failed, ${n} rows dropped: ${errorMessage(err)}`, err);
      return 0;
    }
    this.written(n);
    return n;
  }

  /** Waits for the writer thread to answer everything sent; reports a thread that does not. */
  private settle(): void {
    if (this.link!.settle() || !this.link!.alive) return;
    this.fail(`metrics writer thread did not answer in ${WRITER_ANSWER_TIMEOUT_MS} ms`, undefined);
  }

  private answer(a: WriterAnswer): void {
    if (a.op === 'written') {
      this.sent -= a.rows;
      if (this.spare.length < SPARE_CHUNKS) this.spare.push(a.buffers);
      if (a.error === undefined) this.written(a.rows);
      else this.dropped(a.rows, `metrics write failed, ${a.rows} rows dropped: ${a.error.message}`, threadError(a.error));
    } else if (a.op === 'retained') {
      this.retained = a.result;
      if (a.error !== undefined) this.fail(`metrics retention failed: ${a.error.message}`, threadError(a.error));
    }
  }

  // The thread ended (a crash: it answers every failure as data): what it held is lost.
  private writerDied(why: string): void {
    const n = this.sent;
    this.sent = 0;
    this.dropped(n, `metrics writer thread stopped, ${n} rows dropped: ${why}`, undefined);
  }

  private written(n: number): void {
    this.buffered -= n;
    this.writtenRows += n;
    this.ok = true;
  }

  private dropped(n: number, message: string, cause: unknown): void {
    this.buffered -= n;
    this.droppedOnWriteError += n;
    this.fail(message, cause);
  }

  /** Deletes rows beyond the retention limits, waiting for it. Never throws: a failure is reported by health(). */
  applyRetention(): RetentionResult {
    return this.retain(true);
  }

  private retain(wait: boolean): RetentionResult {
    const none: RetentionResult = { deletedCalls: 0, deletedEvents: 0 };
    const { maxAgeMs, maxRows } = this.retention;
    if (!this.db.open || (maxAgeMs === undefined && maxRows === undefined)) return none;
    if (this.link === undefined) return this.applyRetentionHere();
    if (!this.link.alive) return none;
    this.retained = undefined;
    this.link.retention(maxAgeMs === undefined ? undefined : this.clock() - maxAgeMs, maxRows);
    if (!wait) return none;
    this.settle();
    return this.retained ?? none;
  }

  private applyRetentionHere(): RetentionResult {
    const { maxAgeMs, maxRows } = this.retention;
    try {
      return deleteExpired(this.db, maxAgeMs === undefined ? undefined : this.clock() - maxAgeMs, maxRows);
    } catch (err) {
      this.fail(`metrics retention failed: ${errorMessage(err)}`, err);
      return { deletedCalls: 0, deletedEvents: 0 };
    }
  }

  health(): MetricsHealth {
    return {
      ok: this.ok,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      droppedRows: this.droppedOnOverflow + this.droppedOnWriteError + this.droppedAfterClose,
      droppedOnOverflow: this.droppedOnOverflow,
      droppedOnWriteError: this.droppedOnWriteError,
      bufferedRows: this.buffered,
      writtenRows: this.writtenRows,
      closed: this.closed,
    };
  }

  /** Rows already on disk; buffered rows appear after the next flush (within flushIntervalMs). */
  queryCalls(query: CallQuery = {}): CallRecord[] {
    const rows = this.select('calls', CALL_COLUMNS, 'finished_at', query, [
      ['finished_at > ?', query.since],
      ['finished_at <= ?', query.until],
      ['function_name = ?', query.functionName],
      ['node_id = ?', query.nodeId],
      ['caller = ?', query.caller],
    ]);
    return (rows as CallRow[]).map(toCallRecord);
  }

  queryEvents(query: EventQuery = {}): NodeEvent[] {
    const rows = this.select('node_events', EVENT_COLUMNS, 'at', query, [
      ['at > ?', query.since],
      ['node_id = ?', query.nodeId],
      ['kind = ?', query.kind],
    ]);
    return (rows as EventRow[]).map(toNodeEvent);
  }

  /** SELECT with the conditions whose value is given, newest (or oldest) first, limited. */
  private select(
    table: string,
    columns: string,
    timeColumn: string,
    query: { order?: 'asc' | 'desc'; limit?: number },
    conditions: Array<[string, number | string | undefined]>,
  ): unknown[] {
    const given = conditions.filter(([, value]) => value !== undefined);
    const params: Array<number | string> = given.map(([, value]) => value!);
    const order = query.order === 'asc' ? 'ASC' : 'DESC';
    params.push(positiveInt('limit', query.limit, DEFAULT_QUERY_LIMIT));
    const where = given.length > 0 ? ` WHERE ${given.map(([sql]) => sql).join(' AND ')}` : '';
    return this.statement(`SELECT ${columns} FROM ${table}${where} ORDER BY ${timeColumn} ${order}, id ${order} LIMIT ?`).all(...params);
  }

  /** Calls on disk (not counting the buffer). */
  countCalls(): number {
    return (this.countCallsStmt.get() as { n: number }).n;
  }

  /** Every statistic of stats.ts over (since, until], default the last hour. */
  statistics(window: StatsWindowInput = {}): MetricsStatistics {
    const until = window.until ?? this.clock();
    const since = window.since ?? until - DEFAULT_STATS_WINDOW_MS;
    return computeStatistics(this.db, { since, until });
  }

  /** This store's connection, for the per-piece functions in stats.ts. Do not write through it. */
  get database(): SqliteDatabase {
    return this.db;
  }

  /** Stops the timers, writes every buffered row and closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.flushTimer);
    if (this.continuation !== undefined) clearImmediate(this.continuation);
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    this.flush();
    // The writer's connection first: the last one to close checkpoints the WAL into the file.
    if (this.link !== undefined) {
      const alive = this.link.alive;
      if (!this.link.close() && alive) this.fail(`metrics writer thread did not close in ${WRITER_ANSWER_TIMEOUT_MS} ms`, undefined);
    }
    try {
      this.db.pragma('optimize');
    } catch {
      // only a planner hint; closing matters more
    }
    this.db.close();
  }

  private statement(sql: string): SqliteStatement {
    let stmt = this.queryCache.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.queryCache.set(sql, stmt);
    }
    return stmt;
  }

  private fail(message: string, cause: unknown): void {
    this.ok = false;
    this.lastError = message;
    this.lastErrorAt = this.clock();
    if (this.onError !== undefined) {
      try {
        this.onError(new Error(message, { cause }));
      } catch {
        // a throwing listener must not turn a dropped batch into a crash
      }
    }
  }
}
