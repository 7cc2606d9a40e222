// The logger the gateway and the node make when they are given none: pino, on stderr (so
// a program's own output on stdout stays clean), JSON lines when stderr is not a terminal
// (what log collectors read), one readable line per event on a terminal. Both log
// lifecycle events only, never one line per call.
import pino, { type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'json' | 'pretty';

/** Read when no level is given in the options. */
export const LOG_LEVEL_ENV = 'EASYREMOTE_LOG_LEVEL';
/** Read when no format is given in the options. */
export const LOG_FORMAT_ENV = 'EASYREMOTE_LOG_FORMAT';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** Where log lines go: anything with `write(line)`; `isTTY` decides the default format. */
export interface LogDestination {
  write(line: string): unknown;
  readonly isTTY?: boolean;
}

/** The `logger` option without a logger of your own. */
export interface LoggerSettings {
  /** Default: $EASYREMOTE_LOG_LEVEL, else `info`. `silent` logs nothing. */
  level?: LogLevel;
  /** Default: $EASYREMOTE_LOG_FORMAT, else `pretty` when the destination is a terminal and `json` otherwise. */
  format?: LogFormat;
  /** Default: process.stderr. */
  destination?: LogDestination;
}

/** A pino logger of your own (used as is, with `component` bound), or settings for the default one. */
export type LoggerOption = Logger | LoggerSettings;

function isLogger(option: LoggerOption): option is Logger {
  return typeof (option as Logger).child === 'function' && typeof (option as Logger).info === 'function';
}

function pick<T extends string>(what: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new TypeError(`${what} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
}

/**
 * The logger of one component ('gateway' or 'node'). Every line carries `component`; the
 * JSON form is `{"level":"info","time":"<ISO 8601>","pid":…,"hostname":…,"component":…,
 * <fields>,"msg":…}`.
 */
export function createLogger(component: string, option: LoggerOption = {}, env: NodeJS.ProcessEnv = process.env): Logger {
  if (isLogger(option)) return option.child({ component });
  const level = pick('logger.level', option.level, LEVELS) ?? pick(`$${LOG_LEVEL_ENV}`, env[LOG_LEVEL_ENV], LEVELS) ?? DEFAULT_LOG_LEVEL;
  const out: LogDestination = option.destination ?? process.stderr;
  const format = pick('logger.format', option.format, FORMATS) ?? pick(`$${LOG_FORMAT_ENV}`, env[LOG_FORMAT_ENV], FORMATS) ?? (out.isTTY === true ? 'pretty' : 'json');
  const colour = format === 'pretty' && out.isTTY === true && env.NO_COLOR === undefined;
  const stream = format === 'pretty' ? { write: (line: string) => out.write(prettyLine(line, colour)) } : { write: (line: string) => out.write(line) };
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Names read better than pino's numbers in a log collector's query.
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  ).child({ component });
}

const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'component', 'msg']);
const COLOURS: Record<string, string> = { fatal: '\x1b[35m', error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[32m', debug: '\x1b[36m', trace: '\x1b[90m' };

/** `2026-05-01 12:00:00.123 INFO  gateway: node joined nodeId=n1 principal=anonymous`, one line whatever the fields hold. */
export function prettyLine(json: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? localTime(new Date(entry.time)) : '';
  const level = String(entry.level ?? '');
  const label = level.toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${fieldValue(k, v)}`);
  const head = `${time} ${colour ? `${COLOURS[level] ?? ''}${label}\x1b[0m` : label} ${String(entry.component ?? '')}: ${String(entry.msg ?? '')}`;
  return `${[head, ...fields].join(' ')}\n`;
}

function fieldValue(key: string, v: unknown): string {
  // pino serialises errors to { type, message, stack }: the message is what a reader wants on the line.
  if (key === 'err' && typeof v === 'object' && v !== null && 'message' in v) return JSON.stringify((v as { message: unknown }).message);
  if (typeof v === 'string') return /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function localTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
