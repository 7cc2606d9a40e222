// Results as JSON for people and scripts. MessagePack carries more than JSON can, so
// values are mapped, one way:
//   Uint8Array / Buffer        → {"$base64": "<bytes in base64>"}
//   other typed arrays         → an array of numbers (BigInt64Array items as below)
//   bigint                     → a number when it is a safe integer, else its decimal string
//   Date                       → its ISO 8601 string
//   Map                        → an object when every key is a string, else [[key, value], ...]
//   Set                        → an array
//   undefined                  → null (JSON has no undefined)
//   NaN, Infinity, -Infinity   → the strings "NaN", "Infinity", "-Infinity"
// Everything else (null, booleans, finite numbers, strings, arrays, plain objects) is itself.

export function toJsonValue(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<unknown>, toJsonValue);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Map) {
    const entries = [...value.entries()];
    return entries.every(([k]) => typeof k === 'string')
      ? Object.fromEntries(entries.map(([k, v]) => [k, toJsonValue(v)]))
      : entries.map(([k, v]) => [toJsonValue(k), toJsonValue(v)]);
  }
  if (value instanceof Set) return [...value].map(toJsonValue);
  if (Array.isArray(value)) return value.map(toJsonValue);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
}

/** One line of JSON. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(toJsonValue(value))}\n`;
}

/** For people: a string as itself, anything else as indented JSON. */
export function humanText(value: unknown): string {
  return typeof value === 'string' ? `${value}\n` : `${JSON.stringify(toJsonValue(value), null, 2)}\n`;
}
