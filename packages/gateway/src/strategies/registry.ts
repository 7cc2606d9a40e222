// Strategies are looked up by name from configuration; users may add their own. Each
// built-in declares the options it reads in its own file and registers itself through
// setup() (see builtin.ts); this file only keeps the table and applies the schemas.
import { InvalidArgument } from '@easyremote/protocol';
import { registerBuiltinStrategies } from './builtin.js';
import { compileSchema, parseOptions, StrategyOptionError, type CompiledSchema, type OptionSchema, type OptionsOf } from './option-schema.js';
import type { Strategy, StrategyDefinition, StrategyFactory, StrategyOptions } from './strategy.js';

interface Entry {
  readonly create: (options: StrategyOptions) => Strategy;
  /** undefined: a user strategy without a schema, handed the config object as it came. */
  readonly compiled: CompiledSchema | undefined;
}

const entries = new Map<string, Entry>();
let builtinsRegistered = false;

/**
 * Built-ins are registered on first use of the registry rather than at import, so the
 * strategy files can import this one without a cycle at load time, and so a user strategy
 * registered under a built-in's name replaces it instead of being replaced by it.
 */
function ensureBuiltins(): void {
  if (builtinsRegistered) return;
  builtinsRegistered = true;
  registerBuiltinStrategies((definition) => add(definition.name, definition.create as (o: StrategyOptions) => Strategy, definition.schema));
}

/**
 * Adds a strategy under `name` (lower_snake_case); a later registration replaces an
 * earlier one. Two forms:
 *
 *   registerStrategy(name, factory)           the factory gets the config object as it came
 *   registerStrategy(name, factory, schema)   the factory gets the options parsed by schema
 *   registerStrategy({ name, schema, create }) the same as a definition object (schema optional)
 *
 * With a schema, a function's options are checked against it when the function
 * registers (validateStrategyOptions) and again when an instance is created.
 */
export function registerStrategy(name: string, factory: StrategyFactory): void;
export function registerStrategy<S extends OptionSchema>(name: string, factory: (options: OptionsOf<S>) => Strategy, schema: S): void;
export function registerStrategy<S extends OptionSchema>(definition: StrategyDefinition<S>): void;
export function registerStrategy(
  nameOrDefinition: string | StrategyDefinition,
  factory?: (options: never) => Strategy,
  schema?: OptionSchema,
): void {
  ensureBuiltins();
  if (typeof nameOrDefinition === 'string') {
    if (typeof factory !== 'function') throw new TypeError(`strategy ${JSON.stringify(nameOrDefinition)}: the factory must be a function`);
    add(nameOrDefinition, factory as (o: StrategyOptions) => Strategy, schema);
  } else {
    add(nameOrDefinition.name, nameOrDefinition.create as (o: StrategyOptions) => Strategy, nameOrDefinition.schema);
  }
}

function add(name: string, create: (options: StrategyOptions) => Strategy, schema: OptionSchema | undefined): void {
  if (typeof name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new TypeError(`strategy name must be lower_snake_case, got ${JSON.stringify(name)}`);
  }
  entries.set(name, { create, compiled: schema === undefined ? undefined : compileSchema(name, schema) });
}

export function hasStrategy(name: string): boolean {
  ensureBuiltins();
  return entries.has(name);
}

export function strategyNames(): string[] {
  ensureBuiltins();
  return [...entries.keys()].sort();
}

/** The options schema a strategy declared; undefined for an unknown name or a strategy without one. */
export function strategySchema(name: string): OptionSchema | undefined {
  ensureBuiltins();
  return entries.get(name)?.compiled?.schema;
}

/**
 * A new instance of the strategy (strategies keep per-function state), built from the
 * function's load-balancing options. Throws TypeError for an unknown name (the router and
 * the registry check names first) and StrategyOptionError for options the strategy
 * refuses, including anything its factory throws.
 */
export function createStrategy(name: string, options: StrategyOptions = {}): Strategy {
  ensureBuiltins();
  const entry = entries.get(name);
  if (entry === undefined) {
    throw new TypeError(`unknown load-balancing strategy ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`);
  }
  const parsed = entry.compiled === undefined ? options : parseOptions(name, entry.compiled, options);
  try {
    return entry.create(parsed);
  } catch (err) {
    if (err instanceof StrategyOptionError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new StrategyOptionError(name, undefined, `${name}: the options were refused: ${detail}`, err);
  }
}

/**
 * Checks one function's load-balancing options against every registered strategy's
 * schema: a call may name any strategy, and that strategy is built from the function's
 * options. Once options pass, createStrategy(name, options) cannot refuse them for any
 * strategy with a schema. Throws StrategyOptionError for the first refusal.
 */
export function validateStrategyOptions(options: StrategyOptions): void {
  ensureBuiltins();
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgument(`load-balancing options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const [name, entry] of entries) {
    if (entry.compiled !== undefined) parseOptions(name, entry.compiled, options);
  }
}

export { StrategyOptionError };
