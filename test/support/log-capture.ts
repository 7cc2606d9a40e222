// Test support: the default logger's JSON lines, captured and parsed, instead of stderr.
import type { LoggerSettings, LogLevel } from '@easyremote/protocol';

export interface LogEntry {
  level: string;
  time: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

export function captureLogs(level: LogLevel = 'debug'): { entries: LogEntry[]; logger: LoggerSettings } {
  const entries: LogEntry[] = [];
  return { entries, logger: { level, format: 'json', destination: { write: (line: string) => entries.push(JSON.parse(line) as LogEntry) } } };
}
