// The embedded history of finished calls and node events. The hot path
// only pushes onto an in-memory buffer; a timer moves the buffer into SQLite in one
// transaction per flush, so a call never waits on the disk and a disk problem never
// becomes a call failure: it becomes dropped rows and a health() report.
import type { MetricsHealth } from '@easyremote/protocol';
export type { MetricsHealth };
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';
import type { CallRecord, NodeEvent, NodeEventKind } from './call-record.js';
import { computeStatistics, type MetricsStatistics } from './stats.js';

/** Rows per multi-row INSERT in a flush. */
const ROWS_PER_INSERT = 50;
export const DEFAULT_FLUSH_INTERVAL_MS = 250;
export const DEFAULT_MAX_BUFFER_ROWS = 50_000;
/**
 * Rows the timer writes per event-loop turn (a few ms at a few µs per row); the rest
 * follows on the next turns, so a backlog never stalls the calls in flight for long.
 */
export const DEFAULT_MAX_ROWS_PER_FLUSH = 5_000;
export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
/** Statistics with no window given cover the last hour. */
export const DEFAULT_STATS_WINDOW_MS = 3_600_000;
export const DEFAULT_QUERY_LIMIT = 1_000;
/**
 * How long a write waits for another connection's lock. Kept short on purpose: writes
 * run on the gateway's event loop, so waiting the driver's default 5 s would stall
 * every call in flight. A busy flush drops its batch and the next flush tries again.
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
  /** Rows held between flushes; beyond it new rows are dropped and counted. */
  maxBufferRows?: number;
  /** Rows the timer writes per event-loop turn; flush() and close() write everything. */
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

export interface RetentionResult {
  deletedCalls: number;
  deletedEvents: number;
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

const CALL_COLUMNS =
  'finished_at, function_name, node_id, strategy, client, queue_wait_ms, exec_ms, total_ms, success, error_code, cached, request_bytes, response_bytes, attempts';
const EVENT_COLUMNS = 'at, node_id, kind, function_name, detail';

// SQLite binds NaN as NULL, which fails NOT NULL and would lose the whole batch for one
// bad figure; coerce at flush time so record() stays a bare push.
function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
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

export class MetricsStore {
  private readonly db: SqliteDatabase;
  private readonly clock: () => number;
  private readonly maxBufferRows: number;
  private readonly maxRowsPerFlush: number;
  private readonly retention: RetentionOptions;
  private readonly onError: ((error: Error) => void) | undefined;
  private readonly writeBatch: (calls: readonly CallRecord[], events: readonly NodeEvent[]) => void;
  private readonly countCallsStmt: SqliteStatement;
  private readonly queryCache = new Map<string, SqliteStatement>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout | undefined;
  private continuation: NodeJS.Immediate | undefined;

  private calls: CallRecord[] = [];
  private events: NodeEvent[] = [];
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

    // Rows go in ROWS_PER_INSERT to a statement: one bind-and-step per 50 rows instead of
    // per row roughly halves the flush's CPU, which runs on the gateway's thread.
    const placeholders = (n: number) => Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    const insertCall = db.prepare(`INSERT INTO calls (${CALL_COLUMNS}) VALUES ${placeholders(1)}`);
    const insertCalls = db.prepare(`INSERT INTO calls (${CALL_COLUMNS}) VALUES ${placeholders(ROWS_PER_INSERT)}`);
    const insertEvent = db.prepare(`INSERT INTO node_events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)`);
    const params: unknown[] = new Array(ROWS_PER_INSERT * 14);
    const fill = (c: CallRecord, out: unknown[], at: number) => {
      out[at] = num(c.finishedAt);
      out[at + 1] = str(c.functionName);
      out[at + 2] = str(c.nodeId);
      out[at + 3] = str(c.strategy);
      out[at + 4] = str(c.client);
      out[at + 5] = num(c.queueWaitMs);
      out[at + 6] = num(c.execMs);
      out[at + 7] = num(c.totalMs);
      out[at + 8] = c.success ? 1 : 0;
      out[at + 9] = str(c.errorCode);
      out[at + 10] = c.cached ? 1 : 0;
      out[at + 11] = num(c.requestBytes);
      out[at + 12] = num(c.responseBytes);
      out[at + 13] = num(c.attempts);
    };
    const batch = db.transaction((calls: readonly CallRecord[], events: readonly NodeEvent[]) => {
      let i = 0;
      for (; i + ROWS_PER_INSERT <= calls.length; i += ROWS_PER_INSERT) {
        for (let k = 0; k < ROWS_PER_INSERT; k++) fill(calls[i + k]!, params, k * 14);
        insertCalls.run(params);
      }
      const one: unknown[] = new Array(14);
      for (; i < calls.length; i++) {
        fill(calls[i]!, one, 0);
        insertCall.run(one);
      }
      for (const e of events) insertEvent.run(num(e.at), str(e.nodeId), str(e.kind), str(e.functionName), str(e.detail));
    });
    // IMMEDIATE takes the write lock up front, so a busy database fails at BEGIN
    // (after the short busy timeout) rather than half-way through the batch.
    this.writeBatch = (calls, events) => batch.immediate(calls, events);
    this.countCallsStmt = db.prepare('SELECT COUNT(*) AS n FROM calls');

    this.flushTimer = setInterval(() => this.flushSome(), flushIntervalMs);
    this.flushTimer.unref();
    if (this.retention.maxAgeMs !== undefined || this.retention.maxRows !== undefined) {
      this.applyRetention();
      this.retentionTimer = setInterval(() => this.applyRetention(), retentionIntervalMs);
      this.retentionTimer.unref();
    }
  }

  /** Buffers one finished call (by reference, until the next flush). O(1); never touches the disk and never throws. */
  record(row: CallRecord): void {
    if (this.admit()) this.calls.push(row);
  }

  /** Buffers one node event, under the same rules as record(). */
  recordEvent(event: NodeEvent): void {
    if (this.admit()) this.events.push(event);
  }

  /** Whether the buffer takes one more row; counts the row as dropped when not. */
  private admit(): boolean {
    if (this.closed) {
      this.droppedAfterClose++;
      return false;
    }
    if (this.calls.length + this.events.length >= this.maxBufferRows) {
      this.droppedOnOverflow++;
      return false;
    }
    return true;
  }

  /**
   * Writes the whole buffer now, in one transaction. Returns the rows written; on failure
   * the batch is dropped and counted (retrying it would grow the buffer without bound
   * while the disk stays full) and the error is kept for health().
   */
  flush(): number {
    return this.write(Infinity);
  }

  // The timer's flush: one bounded batch per event-loop turn until the buffer is empty.
  private flushSome(): void {
    const written = this.write(this.maxRowsPerFlush);
    // After a failure, wait for the next tick: each try may wait out the busy timeout.
    if (written > 0 && this.calls.length + this.events.length > 0 && this.continuation === undefined && !this.closed) {
      this.continuation = setImmediate(() => {
        this.continuation = undefined;
        this.flushSome();
      });
    }
  }

  private write(limit: number): number {
    if (this.calls.length === 0 && this.events.length === 0) return 0;
    if (!this.db.open) return 0;
    let calls: CallRecord[];
    if (this.calls.length <= limit) {
      calls = this.calls;
      this.calls = [];
    } else {
      calls = this.calls.splice(0, limit);
    }
    const room = limit - calls.length;
    let events: NodeEvent[];
    if (this.events.length <= room) {
      events = this.events;
      this.events = [];
    } else {
      events = this.events.splice(0, room);
    }
    const n = calls.length + events.length;
    try {
      this.writeBatch(calls, events);
    } catch (err) {
      this.droppedOnWriteError += n;
      this.fail(`metrics write failed, ${n} rows dropped: ${errorMessage(err)}`, err);
      return 0;
    }
    this.writtenRows += n;
    this.ok = true;
    return n;
  }

  /** Deletes rows beyond the retention limits. Never throws: a failure is reported by health(). */
  applyRetention(): RetentionResult {
    const result: RetentionResult = { deletedCalls: 0, deletedEvents: 0 };
    const { maxAgeMs, maxRows } = this.retention;
    if (!this.db.open || (maxAgeMs === undefined && maxRows === undefined)) return result;
    try {
      this.db
        .transaction(() => {
          if (maxAgeMs !== undefined) {
            const cutoff = this.clock() - maxAgeMs;
            result.deletedCalls += this.statement('DELETE FROM calls WHERE finished_at < ?').run(cutoff).changes;
            result.deletedEvents += this.statement('DELETE FROM node_events WHERE at < ?').run(cutoff).changes;
          }
          if (maxRows !== undefined) {
            // Ids grow with insertion, so "the newest N" is "id above the (N+1)-th newest id".
            result.deletedCalls += this
              .statement('DELETE FROM calls WHERE id <= (SELECT id FROM calls ORDER BY id DESC LIMIT 1 OFFSET ?)')
              .run(maxRows).changes;
            result.deletedEvents += this
              .statement('DELETE FROM node_events WHERE id <= (SELECT id FROM node_events ORDER BY id DESC LIMIT 1 OFFSET ?)')
              .run(maxRows).changes;
          }
        })
        .immediate();
    } catch (err) {
      this.fail(`metrics retention failed: ${errorMessage(err)}`, err);
      return { deletedCalls: 0, deletedEvents: 0 };
    }
    return result;
  }

  health(): MetricsHealth {
    return {
      ok: this.ok,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      droppedRows: this.droppedOnOverflow + this.droppedOnWriteError + this.droppedAfterClose,
      droppedOnOverflow: this.droppedOnOverflow,
      droppedOnWriteError: this.droppedOnWriteError,
      bufferedRows: this.calls.length + this.events.length,
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

  /** The underlying connection, for the per-piece functions in stats.ts. Do not write through it. */
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
