// The options a strategy reads, declared next to the strategy, and the one parser that
// checks a function's load-balancing config against them. Parsing happens when the
// function registers, so a bad value is refused then with a message naming the strategy,
// the key and what was expected, instead of misbehaving on the first call.
import { InvalidArgument } from '@easyremote/protocol';

/** At most this much of a refused value is quoted back in the error message. */
const MAX_QUOTED_CHARS = 100;

interface CommonSpec {
  /** Other names (camelCase) accepted for the option, e.g. maxLatency for maxLatencyMs. */
  readonly aliases?: readonly string[];
}

export interface NumberSpec extends CommonSpec {
  readonly type: 'number';
  /** Inclusive bounds. Numbers must always be finite. */
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
}

export interface StringSpec extends CommonSpec {
  readonly type: 'string';
  /** When set, the only accepted values. */
  readonly values?: readonly string[];
}

export interface BooleanSpec extends CommonSpec {
  readonly type: 'boolean';
}

export interface ObjectSpec extends CommonSpec {
  readonly type: 'object';
  /** Deeper check of a plain object; throws (any error) with a message saying what is wrong. */
  readonly check?: (value: Readonly<Record<string, unknown>>) => void;
}

export type OptionSpec = NumberSpec | StringSpec | BooleanSpec | ObjectSpec;

/**
 * The options one strategy reads, by canonical camelCase name. For example:
 *
 *   { maxLatencyMs: { type: 'number', min: 0, aliases: ['maxLatency'] },
 *     target: { type: 'string', values: ['latency', 'throughput', 'cost'] } }
 */
/** Options a strategy receives: the function's load-balancing config object. */
export type StrategyOptions = Readonly<Record<string, unknown>>;

export type OptionSchema = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends NumberSpec
  ? number
  : S extends BooleanSpec
    ? boolean
    : S extends ObjectSpec
      ? Readonly<Record<string, unknown>>
      : S extends { readonly values: readonly (infer E extends string)[] }
        ? E
        : string;

/** What a schema parses to: every option optional, under its canonical name. */
export type OptionsOf<S extends OptionSchema> = { readonly [K in keyof S]?: ValueOf<S[K]> };

/** A load-balancing option that no strategy can accept; refused when the function registers. */
export class StrategyOptionError extends InvalidArgument {
  /** The strategy whose option (or factory) refused the config. */
  readonly strategy: string;
  /** The option key as it was written in the config; undefined when not one option's fault. */
  readonly option: string | undefined;

  constructor(strategy: string, option: string | undefined, message: string, cause?: unknown) {
    super(message, cause === undefined ? {} : { cause });
    this.strategy = strategy;
    this.option = option;
  }
}

/** A schema with its lookup table from every accepted camelCase name to the canonical one. */
export interface CompiledSchema {
  readonly schema: OptionSchema;
  readonly names: ReadonlyMap<string, string>;
}

/** Builds the lookup table once, at registration; a malformed schema is a programming error. */
export function compileSchema(strategy: string, schema: OptionSchema): CompiledSchema {
  const names = new Map<string, string>();
  for (const [key, spec] of Object.entries(schema)) {
    if (!['number', 'string', 'boolean', 'object'].includes(spec.type)) {
      throw new TypeError(`${strategy}: option ${key} has unknown type ${JSON.stringify(spec.type)}`);
    }
    for (const name of [key, ...(spec.aliases ?? [])]) {
      const owner = names.get(name);
      if (owner !== undefined && owner !== key) throw new TypeError(`${strategy}: option name ${name} is used by both ${owner} and ${key}`);
      names.set(name, key);
    }
  }
  return { schema, names };
}

/** snake_case and camelCase are the same key: node declarations come from any language. */
export function camelCase(key: string): string {
  return key.includes('_') ? key.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase()) : key;
}

/**
 * Reads the options `compiled` knows from `options`, under their canonical names. Keys
 * the schema does not know are left alone (they belong to the router or to other
 * strategies); null and undefined mean "not set". When a key appears under two spellings
 * the later one wins, as a later object spread would. Throws StrategyOptionError.
 */
export function parseOptions(strategy: string, compiled: CompiledSchema, options: StrategyOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const raw of Object.keys(options)) {
    const key = compiled.names.get(camelCase(raw));
    if (key === undefined) continue;
    const value = options[raw];
    if (value === undefined || value === null) continue;
    const spec = compiled.schema[key]!;
    const problem = check(spec, value);
    if (problem !== undefined) {
      throw new StrategyOptionError(strategy, raw, `${strategy}: option ${raw} must be ${problem}, got ${quote(value)}`);
    }
    out[key] = value;
  }
  return out;
}

/** undefined when the value fits the spec, else what was expected ("a number >= 0"). */
function check(spec: OptionSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'number': {
      const ok =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (spec.integer !== true || Number.isInteger(value)) &&
        (spec.min === undefined || value >= spec.min) &&
        (spec.max === undefined || value <= spec.max);
      return ok ? undefined : expectedNumber(spec);
    }
    case 'string':
      if (spec.values !== undefined) return typeof value === 'string' && spec.values.includes(value) ? undefined : listOf(spec.values);
      return typeof value === 'string' ? undefined : 'a string';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'true or false';
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return 'an object';
      try {
        spec.check?.(value as Readonly<Record<string, unknown>>);
        return undefined;
      } catch (err) {
        return `a valid object (${err instanceof Error ? err.message : String(err)})`;
      }
    }
  }
}

function expectedNumber(spec: NumberSpec): string {
  const what = spec.integer === true ? 'an integer' : 'a number';
  if (spec.min !== undefined && spec.max !== undefined) return `${what} between ${spec.min} and ${spec.max}`;
  if (spec.min !== undefined) return `${what} >= ${spec.min}`;
  if (spec.max !== undefined) return `${what} <= ${spec.max}`;
  return `a finite ${what.slice(what.indexOf(' ') + 1)}`;
}

/** "latency, throughput or cost" */
function listOf(values: readonly string[]): string {
  if (values.length <= 1) return values.join('');
  return `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

/** The value as JSON where that is meaningful, cut short so a huge config cannot flood a log. */
export function quote(value: unknown): string {
  let text: string | undefined;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') {
    text = typeof value === 'function' ? 'a function' : String(value);
  } else {
    try {
      text = JSON.stringify(value);
    } catch {
      // Circular structures: the type is all we can say cheaply.
    }
    text ??= Object.prototype.toString.call(value);
  }
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}…` : text;
}
