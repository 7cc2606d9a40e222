import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CHUNK_ROWS } from '../../src/metrics/call-chunk.js';
import type { CallRecord, NodeEvent } from '../../src/metrics/call-record.js';
import { MIGRATIONS, MetricsStore, SCHEMA_VERSION, migrate, type Migration } from '../../src/metrics/store.js';
import { callRecord, tempDir } from './helpers.js';

const NEVER = 3_600_000; // flush interval that never fires during a test

let dir: string;
let cleanup: () => void;
const open: MetricsStore[] = [];

function store(options: Partial<ConstructorParameters<typeof MetricsStore>[0]> = {}): MetricsStore {
  const s = new MetricsStore({ path: join(dir, 'metrics.db'), flushIntervalMs: NEVER, ...options });
  open.push(s);
  return s;
}

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  cleanup();
});

describe('MetricsStore writes', () => {
  it('buffers rows until a flush, then returns every field as written', () => {
    const s = store();
    const row = callRecord({
      finishedAt: 1_700_000_000_123,
      functionName: 'fn',
      nodeId: 'n1',
      strategy: 'least_load',
      client: 'client-7',
      caller: 'tenant-a',
      queueWaitMs: 0.75,
      execMs: 33.5,
      totalMs: 40.125,
      success: false,
      errorCode: 'DEADLINE_EXCEEDED',
      cached: true,
      requestBytes: 1234,
      responseBytes: 0,
      attempts: 2,
    });
    s.record(row);
    expect(s.queryCalls()).toEqual([]);
    expect(s.health().bufferedRows).toBe(1);
    expect(s.flush()).toBe(1);
    expect(s.queryCalls()).toEqual([row]);
    expect(s.countCalls()).toBe(1);
    expect(s.health()).toMatchObject({ ok: true, bufferedRows: 0, writtenRows: 1, droppedRows: 0, lastError: null });
  });

  it('flushes on its own timer', async () => {
    const s = store({ flushIntervalMs: 20 });
    s.record(callRecord());
    await new Promise((r) => setTimeout(r, 150));
    expect(s.countCalls()).toBe(1);
  });

  // In memory the rows are written on the gateway's thread (no second connection can reach them).
  it('in memory, drains a backlog in bounded batches, one per event-loop turn', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
    try {
      const s = store({ path: ':memory:', flushIntervalMs: 20, maxRowsPerFlush: 10 });
      for (let i = 0; i < 35; i++) s.record(callRecord({ finishedAt: i }));
      vi.advanceTimersToNextTimer(); // the interval: one batch
      expect(s.health()).toMatchObject({ writtenRows: 10, bufferedRows: 25 });
      vi.advanceTimersToNextTimer(); // the follow-up turn
      expect(s.health()).toMatchObject({ writtenRows: 20, bufferedRows: 15 });
      vi.advanceTimersToNextTimer();
      vi.advanceTimersToNextTimer();
      expect(s.health()).toMatchObject({ writtenRows: 35, bufferedRows: 0 });
      expect(s.queryCalls({ order: 'asc' }).map((r) => r.finishedAt)).toEqual(Array.from({ length: 35 }, (_, i) => i));
    } finally {
      vi.useRealTimers();
    }
  });

  it('hands a full chunk to the writer thread without a flush, and keeps every string across chunks', async () => {
    const s = store();
    // Strings repeat across chunk boundaries (each chunk has its own dictionary) and the
    // later chunks reuse buffers the writer handed back.
    const row = (i: number): CallRecord =>
      callRecord({ finishedAt: i, functionName: `fn-${i % 7}`, nodeId: i % 5 === 0 ? '' : `node-${i % 3}`, client: `c-${i % 11}`, caller: i % 3 === 0 ? '' : `p-${i % 4}`, strategy: i % 2 ? 'a' : 'b', success: i % 13 !== 0, errorCode: i % 13 === 0 ? `E${i % 2}` : '', cached: i % 17 === 0, execMs: i / 4 });
    const total = 3 * CHUNK_ROWS + 10;
    for (let i = 0; i < total; i++) {
      s.record(row(i));
      if (i % CHUNK_ROWS === CHUNK_ROWS - 1) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(s.countCalls()).toBe(3 * CHUNK_ROWS);
    expect(s.flush()).toBe(10);
    const written = s.queryCalls({ order: 'asc', limit: total });
    expect(written).toHaveLength(total);
    expect(written).toEqual(Array.from({ length: total }, (_, i) => row(i)));
  });

  it('writes every buffered row on close()', () => {
    const path = join(dir, 'metrics.db');
    const s = new MetricsStore({ path, flushIntervalMs: NEVER });
    for (let i = 0; i < 5_000; i++) s.record(callRecord({ finishedAt: i }));
    s.recordEvent({ at: 1, nodeId: 'n1', kind: 'joined', functionName: '', detail: 'hello' });
    expect(s.health().bufferedRows).toBe(5_001);
    s.close();
    s.close(); // idempotent
    const again = store({ path });
    expect(again.countCalls()).toBe(5_000);
    expect(again.queryEvents()).toHaveLength(1);
  });

  it('drops and counts rows beyond maxBufferRows without throwing', () => {
    const s = store({ maxBufferRows: 10 });
    for (let i = 0; i < 15; i++) expect(() => s.record(callRecord({ finishedAt: i }))).not.toThrow();
    expect(s.health()).toMatchObject({ bufferedRows: 10, droppedRows: 5, droppedOnOverflow: 5 });
    expect(s.flush()).toBe(10);
    // The first rows are the ones kept: overflow refuses new rows, it does not evict old ones.
    expect(s.queryCalls({ order: 'asc' }).map((r) => r.finishedAt)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.record(callRecord());
    expect(s.health().bufferedRows).toBe(1);
  });

  it('counts rows recorded after close() as dropped', () => {
    const s = store();
    s.close();
    expect(() => s.record(callRecord())).not.toThrow();
    expect(s.health()).toMatchObject({ closed: true, droppedRows: 1 });
  });

  it('keeps a batch with a non-finite figure instead of losing it to NOT NULL', () => {
    const s = store();
    s.record(callRecord({ finishedAt: 1, execMs: Number.NaN }));
    s.record(callRecord({ finishedAt: 2, totalMs: Number.POSITIVE_INFINITY }));
    expect(s.flush()).toBe(2);
    expect(s.queryCalls({ order: 'asc' }).map((r) => [r.execMs, r.totalMs])).toEqual([
      [0, 12.25],
      [10, 0],
    ]);
  });
});

describe('MetricsStore queries', () => {
  it('filters calls by window, function and node, newest first, with a limit', () => {
    const s = store();
    for (let i = 1; i <= 10; i++) {
      s.record(callRecord({ finishedAt: i * 100, functionName: i % 2 === 0 ? 'even' : 'odd', nodeId: i <= 5 ? 'a' : 'b' }));
    }
    s.flush();
    const times = (q: Parameters<MetricsStore['queryCalls']>[0]) => s.queryCalls(q).map((r) => r.finishedAt);
    expect(times({})).toEqual([1000, 900, 800, 700, 600, 500, 400, 300, 200, 100]);
    expect(times({ since: 300, until: 700 })).toEqual([700, 600, 500, 400]);
    expect(times({ functionName: 'even', nodeId: 'b' })).toEqual([1000, 800, 600]);
    expect(times({ limit: 2, order: 'asc' })).toEqual([100, 200]);
  });

  it('filters node events', () => {
    const s = store();
    const events: NodeEvent[] = [
      { at: 10, nodeId: 'a', kind: 'joined', functionName: '', detail: '' },
      { at: 20, nodeId: 'b', kind: 'joined', functionName: '', detail: '' },
      { at: 30, nodeId: 'a', kind: 'ejected', functionName: 'f', detail: '5 consecutive failures' },
      { at: 40, nodeId: 'a', kind: 'readmitted', functionName: 'f', detail: '' },
    ];
    for (const e of events) s.recordEvent(e);
    s.flush();
    expect(s.queryEvents({ order: 'asc' })).toEqual(events);
    expect(s.queryEvents({ nodeId: 'a', since: 10 }).map((e) => e.at)).toEqual([40, 30]);
    expect(s.queryEvents({ kind: 'ejected' })).toEqual([events[2]]);
  });
});

describe('MetricsStore retention', () => {
  it('deletes rows older than maxAgeMs', () => {
    let now = 0;
    const s = store({ retention: { maxAgeMs: 5_000 }, clock: () => now });
    for (let t = 1_000; t <= 10_000; t += 1_000) {
      s.record(callRecord({ finishedAt: t }));
      s.recordEvent({ at: t, nodeId: 'a', kind: 'joined', functionName: '', detail: '' });
    }
    s.flush();
    now = 10_000;
    expect(s.applyRetention()).toEqual({ deletedCalls: 4, deletedEvents: 4 });
    expect(s.queryCalls({ order: 'asc' }).map((r) => r.finishedAt)).toEqual([5_000, 6_000, 7_000, 8_000, 9_000, 10_000]);
    expect(s.queryEvents({ order: 'asc' }).map((e) => e.at)).toEqual([5_000, 6_000, 7_000, 8_000, 9_000, 10_000]);
    expect(s.applyRetention()).toEqual({ deletedCalls: 0, deletedEvents: 0 });
  });

  it('keeps only the newest maxRows rows', () => {
    const s = store({ retention: { maxRows: 3 } });
    for (let i = 1; i <= 10; i++) s.record(callRecord({ finishedAt: i }));
    s.flush();
    expect(s.applyRetention().deletedCalls).toBe(7);
    expect(s.queryCalls({ order: 'asc' }).map((r) => r.finishedAt)).toEqual([8, 9, 10]);
    expect(s.applyRetention().deletedCalls).toBe(0);
    // Fewer rows than the limit: nothing goes.
    const small = store({ path: join(dir, 'small.db'), retention: { maxRows: 3 } });
    small.record(callRecord());
    small.flush();
    expect(small.applyRetention().deletedCalls).toBe(0);
    expect(small.countCalls()).toBe(1);
  });

  it('applies retention when opened', () => {
    const path = join(dir, 'metrics.db');
    const first = new MetricsStore({ path, flushIntervalMs: NEVER });
    for (let i = 1; i <= 10; i++) first.record(callRecord({ finishedAt: i }));
    first.close();
    const again = store({ path, retention: { maxRows: 4 } });
    expect(again.countCalls()).toBe(4);
  });
});

describe('MetricsStore schema', () => {
  it('runs migrations once and records the version', () => {
    const path = join(dir, 'metrics.db');
    new MetricsStore({ path, flushIntervalMs: NEVER }).close();
    new MetricsStore({ path, flushIntervalMs: NEVER }).close();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT version FROM schema_version ORDER BY version').all();
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
      expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' ORDER BY name").pluck().all();
      expect(indexes).toEqual(['calls_by_function', 'calls_by_node', 'calls_by_time']);
    } finally {
      db.close();
    }
  });

  it('applies a later migration step once, in order, and refuses a newer database', () => {
    const db = new Database(':memory:');
    try {
      const v = SCHEMA_VERSION;
      expect(migrate(db, MIGRATIONS, 1)).toEqual(MIGRATIONS.map((m) => m.version));
      const next: Migration[] = [...MIGRATIONS, { version: v + 1, description: 'add a column', up: 'ALTER TABLE calls ADD COLUMN region TEXT' }];
      expect(migrate(db, next, 2)).toEqual([v + 1]);
      expect(migrate(db, next, 3)).toEqual([]);
      expect(db.prepare('SELECT version, applied_at FROM schema_version ORDER BY version').all()).toEqual([
        ...MIGRATIONS.map((m) => ({ version: m.version, applied_at: 1 })),
        { version: v + 1, applied_at: 2 },
      ]);
      expect(() => migrate(db, MIGRATIONS)).toThrow(new RegExp(`schema version ${v + 1} is newer than this build understands \\(${v}\\)`));
    } finally {
      db.close();
    }
  });

  it('upgrades a version 1 database with rows in it: old rows get caller \'\', new rows keep theirs', () => {
    const path = join(dir, 'v1.db');
    const db = new Database(path);
    migrate(db, MIGRATIONS.slice(0, 1), 1);
    db.prepare(
      "INSERT INTO calls (finished_at, function_name, node_id, strategy, client, queue_wait_ms, exec_ms, total_ms, success, error_code, cached, request_bytes, response_bytes, attempts) VALUES (5, 'old', 'n', 's', 'c', 0, 1, 2, 1, '', 0, 3, 4, 1)",
    ).run();
    db.close();
    const s = new MetricsStore({ path, flushIntervalMs: NEVER });
    s.record(callRecord({ finishedAt: 6, functionName: 'new', caller: 'tenant-b' }));
    s.flush();
    expect(s.queryCalls({ order: 'asc' }).map((r) => [r.functionName, r.caller])).toEqual([
      ['old', ''],
      ['new', 'tenant-b'],
    ]);
    expect(s.queryCalls({ caller: 'tenant-b' }).map((r) => r.functionName)).toEqual(['new']);
    s.close();
  });

  it('rolls back a failing migration step, leaving the previous version', () => {
    const db = new Database(':memory:');
    try {
      migrate(db);
      const broken: Migration[] = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, description: 'broken', up: 'CREATE TABLE extra (x); SELECT * FROM no_such_table' }];
      expect(() => migrate(db, broken)).toThrow(/no_such_table/);
      expect(db.prepare('SELECT MAX(version) AS v FROM schema_version').get()).toEqual({ v: SCHEMA_VERSION });
      expect(db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'extra'").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});

describe('MetricsStore bad conditions', () => {
  it('rejects nonsensical options before opening anything', () => {
    const path = join(dir, 'never.db');
    expect(() => new MetricsStore({ path, retention: { maxRows: -1 } })).toThrow(/retention.maxRows must be a positive number/);
    expect(() => new MetricsStore({ path, flushIntervalMs: 0 })).toThrow(RangeError);
  });

  it('names the path and the cause for a file that is not SQLite', () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, Buffer.alloc(8192, 0x5a));
    expect(() => new MetricsStore({ path })).toThrow(`metrics database ${path} is not a valid SQLite file`);
    expect(() => new MetricsStore({ path })).toThrow(/SQLITE_NOTADB|not a database/);
  });

  it('names the path when the directory does not exist', () => {
    const path = join(dir, 'missing', 'metrics.db');
    expect(() => new MetricsStore({ path })).toThrow(`metrics database ${path} cannot be opened for writing: directory ${join(dir, 'missing')} does not exist`);
  });

  it('names the path when its parent is a file', () => {
    writeFileSync(join(dir, 'plain-file'), 'x');
    const path = join(dir, 'plain-file', 'metrics.db');
    expect(() => new MetricsStore({ path })).toThrow(`metrics database ${path} cannot be opened for writing`);
  });

  it('names the path when it is a directory', () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    expect(() => new MetricsStore({ path })).toThrow(`metrics database ${path} cannot be opened for writing: the path is a directory`);
  });

  it.skipIf(process.getuid?.() === 0)('names the path when the directory is read-only', () => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    try {
      const path = join(ro, 'metrics.db');
      expect(() => new MetricsStore({ path })).toThrow(`metrics database ${path} cannot be opened for writing`);
    } finally {
      chmodSync(ro, 0o700);
    }
  });

  it('degrades while another connection holds the write lock, then resumes', () => {
    const path = join(dir, 'metrics.db');
    const errors: Error[] = [];
    const s = store({ path, onError: (e) => errors.push(e) });
    const other = new Database(path);
    try {
      other.exec('BEGIN EXCLUSIVE');
      for (let i = 0; i < 7; i++) expect(() => s.record(callRecord({ finishedAt: i }))).not.toThrow();
      expect(() => s.flush()).not.toThrow();
      const h = s.health();
      expect(h.ok).toBe(false);
      expect(h.droppedRows).toBe(7);
      expect(h.droppedOnWriteError).toBe(7);
      expect(h.writtenRows).toBe(0);
      expect(h.bufferedRows).toBe(0);
      expect(h.lastError).toMatch(/metrics write failed, 7 rows dropped: SQLITE_BUSY/);
      expect(errors).toHaveLength(1);
      // Still locked: the next flush fails again rather than blocking.
      s.record(callRecord());
      s.flush();
      expect(s.health().droppedRows).toBe(8);
      other.exec('COMMIT');
    } finally {
      other.close();
    }
    s.record(callRecord({ finishedAt: 100 }));
    s.record(callRecord({ finishedAt: 101 }));
    expect(s.flush()).toBe(2);
    const h = s.health();
    expect(h.ok).toBe(true);
    expect(h.writtenRows).toBe(2);
    expect(h.droppedRows).toBe(8);
    expect(h.lastError).toMatch(/SQLITE_BUSY/); // remembered after recovery
    expect(s.queryCalls({ order: 'asc' }).map((r) => r.finishedAt)).toEqual([100, 101]);
  });

  it('reports a failed retention pass instead of throwing', () => {
    const path = join(dir, 'metrics.db');
    const s = store({ path, retention: { maxRows: 1 } });
    const other = new Database(path);
    try {
      other.exec('BEGIN EXCLUSIVE');
      expect(s.applyRetention()).toEqual({ deletedCalls: 0, deletedEvents: 0 });
      expect(s.health().ok).toBe(false);
      expect(s.health().lastError).toMatch(/metrics retention failed: SQLITE_BUSY/);
      other.exec('COMMIT');
    } finally {
      other.close();
    }
  });
});
