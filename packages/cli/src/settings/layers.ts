// Settings from three places, in this order of precedence: command-line flags, then
// EASYREMOTE_* environment variables, then a configuration file. Each setting is one row
// of a table (its path, flag, variable and kind); the layers are merged value by value,
// and the result is checked once by a zod schema, so a refused value is reported with
// its path, what was expected, and where it came from.
import type { z } from 'zod';
import { flatIssues, pathText, SettingsError, type Problem } from './problems.js';
import { shown } from './values.js';

/**
 * How a flag's or a variable's text becomes a value:
 * - string: as written;
 * - number: a decimal number (e.g. `8080`, `0.5`, `1e3`); anything else stays text, which the schema refuses;
 * - bool: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case); a flag without a value is true;
 * - list: comma-separated, blanks around items dropped, empty items dropped;
 * - pairs: `key=value`, comma-separated or a flag given several times, into an object;
 * - json: a JSON document.
 */
export type SettingKind = 'string' | 'number' | 'bool' | 'list' | 'pairs' | 'json';

export interface SettingSpec {
  /** Where the value goes, dotted: `httpPort`, `tls.cert`. */
  readonly path: string;
  readonly kind: SettingKind;
  /** Long flag without the dashes (`http-port`); none for settings that are never flags (secrets). */
  readonly flag?: string;
  /** Placeholder shown in help (`<port>`). */
  readonly arg?: string;
  readonly env?: string;
  readonly help: string;
  /** A bool flag or variable that, when true, puts this value at `path` (`--no-metrics` puts false at `metrics`); false puts nothing. */
  readonly whenTrue?: unknown;
}

export interface SettingSources {
  /** The configuration file's document and how to name it (its path). */
  readonly file?: { readonly label: string; readonly document: unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** What each flag given on the command line carried, by flag name (`true` for a flag without a value). */
  readonly flags: ReadonlyMap<string, unknown>;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function parseBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  const t = String(raw).trim().toLowerCase();
  return TRUE.has(t) ? true : FALSE.has(t) ? false : undefined;
}

/** A flag's or variable's text as the value its kind says; undefined when it puts nothing. */
export function convert(spec: SettingSpec, raw: unknown, source: string): unknown {
  const refuse = (message: string): never => {
    throw new SettingsError([{ path: spec.path, message, source }]);
  };
  const items = (v: unknown) => (Array.isArray(v) ? v : [v]).flatMap((s) => String(s).split(',')).map((s) => s.trim()).filter((s) => s !== '');
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'number':
      return typeof raw === 'string' && NUMBER.test(raw.trim()) ? Number(raw) : raw;
    case 'bool': {
      const b = parseBool(raw);
      if (spec.whenTrue === undefined) return b ?? raw;
      if (b === undefined) refuse(`expected true or false, got ${shown(raw)}`);
      return b ? spec.whenTrue : undefined;
    }
    case 'list':
      return items(raw);
    case 'pairs': {
      const out: Record<string, string> = {};
      for (const item of items(raw)) {
        const eq = item.indexOf('=');
        if (eq <= 0) refuse(`expected key=value, got ${shown(item)}`);
        out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
      }
      return out;
    }
    case 'json':
      try {
        return JSON.parse(String(raw));
      } catch (err) {
        return refuse(`expected JSON, got ${shown(raw)} (${(err as Error).message})`);
      }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Puts `value` at a dotted path, making objects on the way (a non-object in the way is replaced). */
function put(doc: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = doc;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(at[key])) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  // Pairs add to what a lower layer gave; any other value replaces it.
  at[last] = isPlainObject(value) && isPlainObject(at[last]) ? { ...at[last], ...value } : value;
}

/** Merges file < environment < flags and checks the result; throws SettingsError listing every problem. */
export function resolveSettings<S extends z.ZodType>(schema: S, specs: readonly SettingSpec[], sources: SettingSources): z.output<S> {
  const { file } = sources;
  if (file !== undefined && !isPlainObject(file.document)) {
    throw new SettingsError([{ path: '', message: `expected a JSON object, got ${shown(file.document)}`, source: file.label }]);
  }
  const doc: Record<string, unknown> = file === undefined ? {} : structuredClone(file.document as Record<string, unknown>);
  const from = new Map<string, string>();
  const problems: Problem[] = [];
  const layer = (name: (s: SettingSpec) => string | undefined, raw: (s: SettingSpec, name: string) => unknown) => {
    for (const spec of specs) {
      const n = name(spec);
      if (n === undefined) continue;
      const r = raw(spec, n);
      if (r === undefined) continue;
      try {
        const value = convert(spec, r, n);
        if (value === undefined) continue;
        put(doc, spec.path, value);
        from.set(spec.path, n);
      } catch (err) {
        if (!(err instanceof SettingsError)) throw err;
        problems.push(...err.problems);
      }
    }
  };
  // An empty variable is unset (`EASYREMOTE_PORT= easyremote gateway`); an empty flag value is a value.
  layer((s) => s.env, (_s, n) => sources.env[n] || undefined);
  layer((s) => (s.flag === undefined ? undefined : `--${s.flag}`), (s) => sources.flags.get(s.flag!));
  if (problems.length > 0) throw new SettingsError(problems);
  const parsed = schema.safeParse(doc, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new SettingsError(
    flatIssues(parsed.error.issues).map(({ path, message }) => {
      return { path: pathText(path), message, source: sourceOf(path, from, file) };
    }),
  );
}

/**
 * Where a refused value came from: the flag or variable that set it or an object above it,
 * else the file when it holds the value; none for a value nobody gave (a required one).
 */
function sourceOf(path: readonly PropertyKey[], from: ReadonlyMap<string, string>, file: SettingSources['file']): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const hit = from.get(path.slice(0, n).map(String).join('.'));
    if (hit !== undefined) return hit;
  }
  let at: unknown = file?.document;
  for (const key of path) at = typeof at === 'object' && at !== null ? (at as Record<PropertyKey, unknown>)[key] : undefined;
  return at === undefined ? undefined : file!.label;
}
