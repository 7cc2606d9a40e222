// The limits a call's request must meet before any work is done for it, at the gateway or
// at a node serving calls directly. Each refusal names the limit, its value and what the
// caller sent (quoted, never echoed whole).
import { InvalidArgument, type EasyRemoteError } from '../errors.js';
import type { CallOptions } from '../generated/easyremote/v1/common.js';
import {
  MAX_AFFINITY_KEY_BYTES,
  MAX_CALL_FUNCTION_NAME_BYTES,
  MAX_METADATA_BYTES,
  MAX_METADATA_ENTRIES,
  MAX_OPTION_STRING_BYTES,
  MAX_REQUIREMENTS,
  quote,
  utf8Bytes,
} from '../limits.js';

function tooLong(what: string, limitName: string, limit: number, actual: number, unit = 'bytes'): EasyRemoteError {
  return new InvalidArgument(`${what} is ${actual} ${unit}; the limit is ${limit} ${unit}`, { limit: { name: limitName, limit, actual } });
}

function checkString(what: string, value: string, limitName: string, limit: number): EasyRemoteError | undefined {
  const bytes = utf8Bytes(value);
  return bytes > limit ? tooLong(what, limitName, limit, bytes) : undefined;
}

/** A call's function name, before it is looked up. */
export function checkFunctionName(name: string): EasyRemoteError | undefined {
  if (name === '') return new InvalidArgument('CallRequest.function is empty');
  return checkString('the function name', name, 'max_call_function_name_bytes', MAX_CALL_FUNCTION_NAME_BYTES);
}

/** The caller metadata that would be passed to the handler. */
export function checkMetadata(metadata: Readonly<Record<string, string>>): EasyRemoteError | undefined {
  let entries = 0;
  let bytes = 0;
  for (const key in metadata) {
    entries++;
    bytes += utf8Bytes(key) + utf8Bytes(metadata[key]!);
  }
  if (entries > MAX_METADATA_ENTRIES) return tooLong('caller metadata', 'max_metadata_entries', MAX_METADATA_ENTRIES, entries, 'entries');
  if (bytes > MAX_METADATA_BYTES) return tooLong('caller metadata', 'max_metadata_bytes', MAX_METADATA_BYTES, bytes);
  return undefined;
}

function checkNumber(what: string, value: number): EasyRemoteError | undefined {
  return Number.isFinite(value) && value >= 0 ? undefined : new InvalidArgument(`${what} must be a finite number >= 0, got ${value}`);
}

/** A call's routing options, and the affinity key wherever it came from. */
export function checkCallOptions(options: CallOptions | undefined, affinityFromMetadata: string | undefined): EasyRemoteError | undefined {
  if (affinityFromMetadata !== undefined) {
    const err = checkString('the affinity key', affinityFromMetadata, 'max_affinity_key_bytes', MAX_AFFINITY_KEY_BYTES);
    if (err) return err;
  }
  if (options === undefined) return undefined;
  const problem =
    checkString('options.affinity_key', options.affinityKey, 'max_affinity_key_bytes', MAX_AFFINITY_KEY_BYTES) ??
    checkString('options.strategy', options.strategy, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES) ??
    checkString('options.fallback_strategy', options.fallbackStrategy, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES) ??
    checkString('options.prefer_location', options.preferLocation, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES) ??
    checkNumber('options.complexity', options.complexity) ??
    checkNumber('options.max_latency_ms', options.maxLatencyMs) ??
    checkNumber('options.max_cost', options.maxCost);
  if (problem) return problem;
  const requirements = Object.entries(options.requirements);
  if (requirements.length > MAX_REQUIREMENTS) return tooLong('options.requirements', 'max_requirements', MAX_REQUIREMENTS, requirements.length, 'entries');
  for (const [key, value] of requirements) {
    const err =
      checkString(`requirement key ${quote(key)}`, key, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES) ??
      checkString(`requirement ${quote(key)}`, value, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES);
    if (err) return err;
  }
  return undefined;
}
