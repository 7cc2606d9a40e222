// History statistics over a time window, computed by SQLite from the calls table: per
// node, per function, strategy effectiveness, distribution, error rates, rate.
//
// Percentiles are exact, by the nearest-rank method: the p-th percentile of n values is
// the value at 1-based rank ceil(p/100 * n) in ascending order, i.e. the smallest value
// with at least p% of the values at or below it. It is always one of the observed
// values (no interpolation). The rank is computed as ceil(p * n / 100) with an integer
// product, so no floating-point rounding can move it.
//
// Windows are (since, until]: adjacent windows never count a row twice.
import type { CallerStats, ErrorRate, FunctionStats, MetricsStatistics, NodeShare, NodeStats, PerformanceStats, StrategyStats, WindowSummary } from '@easyremote/protocol';
export type { CallerStats, ErrorRate, FunctionStats, MetricsStatistics, NodeShare, NodeStats, PerformanceStats, StrategyStats, WindowSummary };
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';

/** The percentiles every latency figure carries. */
export const PERCENTILES = [50, 95, 99] as const;

/** Where the error has no catalogue code, it is counted under this one. */
export const UNKNOWN_ERROR_CODE = 'UNKNOWN';

export interface StatsWindow {
  /** Exclusive lower bound on finishedAt (epoch ms). */
  since: number;
  /** Inclusive upper bound on finishedAt (epoch ms). */
  until: number;
  /** Restrict every figure to one function. */
  functionName?: string;
}

export interface LatencyFigures {
  /** Rows the figures are computed over. */
  count: number;
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

interface CountRow {
  k: string;
  calls: number;
  successes: number;
  cached: number;
  avg_total: number;
}

const EMPTY_LATENCY: LatencyFigures = { count: 0, avgMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 };

// Only fixed column names and fixed filters are ever spliced into SQL; values are bound.
type GroupColumn = 'node_id' | 'function_name' | 'strategy' | 'caller' | "''";
type ValueColumn = 'exec_ms' | 'total_ms';
const RAN_ON_NODE = "node_id <> '' AND cached = 0";

const statementCache = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();

function statement(db: SqliteDatabase, sql: string): SqliteStatement {
  let cache = statementCache.get(db);
  if (cache === undefined) {
    cache = new Map();
    statementCache.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (stmt === undefined) {
    stmt = db.prepare(sql);
    cache.set(sql, stmt);
  }
  return stmt;
}

function windowClause(window: StatsWindow, extra: string | undefined): { where: string; params: Array<number | string> } {
  const parts = ['finished_at > ?', 'finished_at <= ?'];
  const params: Array<number | string> = [window.since, window.until];
  if (window.functionName !== undefined) {
    parts.push('function_name = ?');
    params.push(window.functionName);
  }
  if (extra !== undefined) parts.push(extra);
  return { where: parts.join(' AND '), params };
}

function rate(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

function counts(db: SqliteDatabase, group: GroupColumn, window: StatsWindow, extra?: string): CountRow[] {
  const { where, params } = windowClause(window, extra);
  // The whole window needs no GROUP BY (and its temporary b-tree); it always yields one row.
  const grouping = group === "''" ? '' : ' GROUP BY k ORDER BY calls DESC, k ASC';
  const sql =
    `SELECT ${group} AS k, COUNT(*) AS calls, COALESCE(SUM(success), 0) AS successes, COALESCE(SUM(cached), 0) AS cached, ` +
    `COALESCE(AVG(total_ms), 0) AS avg_total FROM calls WHERE ${where}${grouping}`;
  return statement(db, sql).all(...params) as CountRow[];
}

function latencies(db: SqliteDatabase, group: GroupColumn, value: ValueColumn, window: StatsWindow, extra?: string): Map<string, LatencyFigures> {
  const { where, params } = windowClause(window, extra);
  // Each group's values are read as bare numbers (through the (group, finished_at) index
  // where there is one) and sorted as a Float64Array: measured several times faster than
  // letting SQLite rank them with ROW_NUMBER() over the whole window.
  const keysSql = `SELECT DISTINCT ${group} AS k FROM calls WHERE ${where}`;
  const valuesSql = `SELECT ${value} FROM calls WHERE ${where} AND ${group} = ?`;
  const out = new Map<string, LatencyFigures>();
  const keys = group === "''" ? [''] : (statement(db, keysSql).pluck().all(...params) as string[]);
  for (const k of keys) {
    const values = Float64Array.from(statement(db, valuesSql).pluck().all(...params, k) as number[]);
    out.set(k, summarise(values));
  }
  return out;
}

/** Nearest-rank percentiles and mean of `values` (sorted in place). */
export function summarise(values: Float64Array): LatencyFigures {
  const n = values.length;
  if (n === 0) return EMPTY_LATENCY;
  values.sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const [p50Ms, p95Ms, p99Ms] = PERCENTILES.map((p) => values[Math.max(1, Math.ceil((p * n) / 100)) - 1]);
  return { count: n, avgMs: sum / n, p50Ms, p95Ms, p99Ms };
}

function performance(row: CountRow, exec: LatencyFigures): PerformanceStats {
  return {
    calls: row.calls,
    successes: row.successes,
    failures: row.calls - row.successes,
    successRate: rate(row.successes, row.calls),
    cachedCalls: row.cached,
    executedCalls: exec.count,
    avgExecMs: exec.avgMs,
    p50ExecMs: exec.p50Ms,
    p95ExecMs: exec.p95Ms,
    p99ExecMs: exec.p99Ms,
    avgTotalMs: row.avg_total,
  };
}

/** Per node that served calls in the window (calls that reached no node are left out), busiest first. */
export function nodeStats(db: SqliteDatabase, window: StatsWindow): NodeStats[] {
  const exec = latencies(db, 'node_id', 'exec_ms', window, RAN_ON_NODE);
  return counts(db, 'node_id', window, "node_id <> ''").map((row) => ({ nodeId: row.k, ...performance(row, exec.get(row.k) ?? EMPTY_LATENCY) }));
}

/** Per function called in the window, busiest first. */
export function functionStats(db: SqliteDatabase, window: StatsWindow): FunctionStats[] {
  const exec = latencies(db, 'function_name', 'exec_ms', window, RAN_ON_NODE);
  return counts(db, 'function_name', window).map((row) => ({ functionName: row.k, ...performance(row, exec.get(row.k) ?? EMPTY_LATENCY) }));
}

/** Calls grouped by `group` (its '' rows left out), judged by the total time seen at the gateway. */
function byTotalTime(db: SqliteDatabase, group: 'strategy' | 'caller', window: StatsWindow) {
  const extra = `${group} <> ''`;
  const total = latencies(db, group, 'total_ms', window, extra);
  return counts(db, group, window, extra).map((row) => {
    const t = total.get(row.k) ?? EMPTY_LATENCY;
    const figures = {
      calls: row.calls,
      successes: row.successes,
      successRate: rate(row.successes, row.calls),
      avgTotalMs: row.avg_total,
      p50TotalMs: t.p50Ms,
      p95TotalMs: t.p95Ms,
      p99TotalMs: t.p99Ms,
    };
    return { key: row.k, figures };
  });
}

/** Per strategy that routed calls in the window (calls no strategy ran for are left out). */
export function strategyStats(db: SqliteDatabase, window: StatsWindow): StrategyStats[] {
  return byTotalTime(db, 'strategy', window).map(({ key, figures }) => ({ strategy: key, ...figures }));
}

/** Per authenticated caller in the window (the anonymous principal's calls are left out), busiest first. */
export function callerStats(db: SqliteDatabase, window: StatsWindow): CallerStats[] {
  return byTotalTime(db, 'caller', window).map(({ key, figures }) => ({ caller: key, ...figures, failures: figures.calls - figures.successes }));
}

/** How the calls that reached a node spread across nodes. */
export function nodeDistribution(db: SqliteDatabase, window: StatsWindow): NodeShare[] {
  const rows = counts(db, 'node_id', window, "node_id <> ''");
  const served = rows.reduce((sum, r) => sum + r.calls, 0);
  return rows.map((r) => ({ nodeId: r.k, calls: r.calls, share: rate(r.calls, served) }));
}

/** Failed calls by error code, most frequent first; rate is against every call in the window. */
export function errorRates(db: SqliteDatabase, window: StatsWindow): ErrorRate[] {
  const { where, params } = windowClause(window, undefined);
  const totalSql = `SELECT COUNT(*) AS n FROM calls WHERE ${where}`;
  const total = (statement(db, totalSql).get(...params) as { n: number }).n;
  const sql =
    `SELECT CASE WHEN error_code = '' THEN '${UNKNOWN_ERROR_CODE}' ELSE error_code END AS code, COUNT(*) AS n ` +
    `FROM calls WHERE ${where} AND success = 0 GROUP BY code ORDER BY n DESC, code ASC`;
  return (statement(db, sql).all(...params) as Array<{ code: string; n: number }>).map((r) => ({ code: r.code, count: r.n, rate: rate(r.n, total) }));
}

/** The whole window: volume, rate, success and client-visible latency. */
export function windowSummary(db: SqliteDatabase, window: StatsWindow): WindowSummary {
  const row = counts(db, "''", window)[0];
  const total = latencies(db, "''", 'total_ms', window).get('') ?? EMPTY_LATENCY;
  const calls = row?.calls ?? 0;
  const successes = row?.successes ?? 0;
  const seconds = (window.until - window.since) / 1000;
  return {
    since: window.since,
    until: window.until,
    calls,
    successes,
    failures: calls - successes,
    successRate: rate(successes, calls),
    cachedCalls: row?.cached ?? 0,
    requestsPerSecond: seconds > 0 ? calls / seconds : 0,
    avgTotalMs: total.avgMs,
    p50TotalMs: total.p50Ms,
    p95TotalMs: total.p95Ms,
    p99TotalMs: total.p99Ms,
  };
}

/** Every figure above, read in one transaction so they agree with each other. */
export function computeStatistics(db: SqliteDatabase, window: StatsWindow): MetricsStatistics {
  return db.transaction(() => ({
    summary: windowSummary(db, window),
    nodes: nodeStats(db, window),
    functions: functionStats(db, window),
    strategies: strategyStats(db, window),
    callers: callerStats(db, window),
    distribution: nodeDistribution(db, window),
    errors: errorRates(db, window),
  }))();
}
