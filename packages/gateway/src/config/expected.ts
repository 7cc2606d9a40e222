// Schema leaves that say what they expect. Every refusal reads "expected <what>, got
// <the value as JSON>", so an error names the type and range wanted and shows what was
// given, whatever check failed (type, integer, bounds).
import { z } from 'zod';

/** The largest timer delay Node honours; a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Characters of a refused value shown in an error. */
const MAX_SHOWN_CHARS = 80;

/** A value as an error message shows it: JSON, cut to a readable length; `nothing` when absent. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 1)}…` : text;
}

/** The error parameter of a leaf: every issue it raises says what it expected. */
export function expecting(what: string) {
  return {
    error: (iss: { input?: unknown }) => `expected ${what}, got ${shown(iss.input)}`,
  };
}

export const bool = () => z.boolean(expecting('true or false'));
export const text = (what = 'a non-empty string') => z.string(expecting(what)).min(1, expecting(what));
export const filePath = () => text('a file path (a non-empty string)');
export const port = () => {
  const e = expecting('a port number (integer 0..65535)');
  return z.number(e).int(e).min(0, e).max(65_535, e);
};
/** Whole milliseconds that a timer can wait. */
export const ms = (min: 0 | 1) => {
  const e = expecting(`a duration in ms (integer ${min}..${MAX_TIMER_MS})`);
  return z.number(e).int(e).min(min, e).max(MAX_TIMER_MS, e);
};
export const integer = (min: number, what = `an integer >= ${min}`) => {
  const e = expecting(what);
  return z.number(e).int(e).min(min, e).max(Number.MAX_SAFE_INTEGER, e);
};
export const bytes = (min: 0 | 1) => integer(min, `a size in bytes (integer >= ${min})`);
export const atLeast = (min: number) => {
  const e = expecting(`a number >= ${min}`);
  return z.number(e).min(min, e).max(Number.MAX_VALUE, e);
};
export const positive = () => {
  const e = expecting('a number > 0');
  return z.number(e).gt(0, e).max(Number.MAX_VALUE, e);
};
/** 0..1 inclusive; `openBelow`: above 0. */
export const fraction = (openBelow = false) => {
  const e = expecting(openBelow ? 'a fraction (number > 0 and <= 1)' : 'a fraction (number 0..1)');
  return (openBelow ? z.number(e).gt(0, e) : z.number(e).min(0, e)).max(1, e);
};
export const strings = (what = 'a list of non-empty strings') => z.array(text(what), expecting(what));
export const stringMap = () => z.record(z.string(), z.string(expecting('a string')), expecting('an object of strings'));
export const anyObject = () => z.record(z.string(), z.unknown(), expecting('an object'));

/**
 * An object with exactly these fields: an unknown one is refused naming it and the known
 * ones; anything not an object says which fields one would have.
 */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss: { code?: string; input?: unknown; keys?: string[] }) =>
      iss.code === 'unrecognized_keys' ? `unknown field(s) ${iss.keys!.join(', ')} (known: ${fields})` : `expected an object (${fields}), got ${shown(iss.input)}`,
  });
}
