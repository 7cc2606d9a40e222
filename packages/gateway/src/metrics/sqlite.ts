// The part of a better-sqlite3 connection that the metrics code uses, declared here so
// that the published .d.ts files name these types rather than better-sqlite3's: those
// live in @types/better-sqlite3, a dev dependency, and a user's tsc would fail on them
// (TS7016) when it follows Gateway.metrics down to the store. A better-sqlite3 Database
// is assignable to SqliteDatabase; nothing else implements it.

export interface SqliteRunResult {
  readonly changes: number;
  readonly lastInsertRowid: number | bigint;
}

export interface SqliteStatement {
  run(...params: unknown[]): SqliteRunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  /** Returns only the first column of each row from get() and all(). */
  pluck(toggle?: boolean): this;
}

// Shaped as better-sqlite3's own declarations are, which is what lets its Database be
// assigned to SqliteDatabase (`any[]` and this conditional type rather than Parameters<F>).
type AnyFunction = (...args: any[]) => unknown;
type ArgsOf<F extends AnyFunction> = F extends (...args: infer A) => unknown ? A : never;

/** A function wrapped in BEGIN … COMMIT (ROLLBACK when it throws). */
export interface SqliteTransaction<F extends AnyFunction> {
  (...args: ArgsOf<F>): ReturnType<F>;
  /** The same, started with BEGIN IMMEDIATE (the write lock taken up front). */
  immediate(...args: ArgsOf<F>): ReturnType<F>;
}

export interface SqliteDatabase {
  readonly open: boolean;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
  pragma(source: string): unknown;
  transaction<F extends AnyFunction>(fn: F): SqliteTransaction<F>;
  close(): unknown;
}
