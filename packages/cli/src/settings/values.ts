// Schema leaves for the command line's own settings (the node's, the client's), phrased
// as the gateway's configuration schema phrases its own: "expected <what>, got <value>".
import { z } from 'zod';

const MAX_SHOWN_CHARS = 80;
/** The largest timer delay Node honours. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A value as an error message shows it: JSON, cut to a readable length; `nothing` when absent. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 1)}…` : text;
}

export function expecting(what: string) {
  return { error: (iss: { input?: unknown }) => `expected ${what}, got ${shown(iss.input)}` };
}

export const text = (what = 'a non-empty string') => z.string(expecting(what)).min(1, expecting(what));
export const bool = () => z.boolean(expecting('true or false'));
export const integer = (min: number, max = Number.MAX_SAFE_INTEGER, what = `an integer ${min}..${max}`) => {
  const e = expecting(what);
  return z.number(e).int(e).min(min, e).max(max, e);
};
export const ms = (min: 0 | 1) => integer(min, MAX_TIMER_MS, `a duration in ms (integer ${min}..${MAX_TIMER_MS})`);
export const filePath = () => text('a file path (a non-empty string)');
/** host:port, the host a name, an IPv4 address or a bracketed IPv6 address. */
export const address = () => {
  const what = 'a gateway address (host:port)';
  return z.string(expecting(what)).regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, expecting(what));
};
/** One gateway address, or several separated by commas (several gateways: docs/several-gateways.md). */
export const addresses = () => {
  const what = 'gateway addresses (host:port, several separated by commas)';
  return z.string(expecting(what)).regex(/^\s*(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}(\s*,\s*(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5})*\s*$/, expecting(what));
};

/** The addresses a `gateway` setting names, in order. */
export function gatewayList(value: string): string[] {
  return value.split(',').map((a) => a.trim()).filter((a) => a !== '');
}
export const labels = () => z.record(z.string(), z.string(expecting('a string')), expecting('an object of strings (labels)'));
