// MessagePack codec for arguments and results. The gateway never calls it on the call
// path: it routes on the protobuf envelope and relays these bytes untouched.
import { Packr, addExtension } from 'msgpackr';

/** Extension type for JS `Map` (payload: a MessagePack array of [key, value] pairs). */
export const MAP_EXTENSION_TYPE = 0x4d;

// msgpackr writes every Map as a plain MessagePack map before it consults extensions,
// and plain maps decode as objects, so a Map would come back as an object. A subclass is
// routed through the extension table instead; `toWire` swaps Maps for it on the way out.
class WireMap<K, V> extends Map<K, V> {}

addExtension({
  Class: WireMap,
  type: MAP_EXTENSION_TYPE,
  write: (map: Map<unknown, unknown>) => Array.from(map, ([k, v]) => [toWire(k), toWire(v)]),
  read: (entries: Array<[unknown, unknown]>) => new Map(entries),
});

const packr = new Packr({
  useRecords: false,
  moreTypes: true,
  int64AsType: 'bigint',
  useBigIntExtension: true,
  variableMapSize: true,
});

const MAX_DEPTH = 256;

function toWire(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) throw new TypeError(`value nests deeper than ${MAX_DEPTH} levels (cycle?)`);
  const ctor = (value as object).constructor;
  if (ctor === Map) {
    return new WireMap(value as Map<unknown, unknown>);
  }
  if (ctor === Array) {
    const arr = value as unknown[];
    let out: unknown[] | undefined;
    for (let i = 0; i < arr.length; i++) {
      const v = toWire(arr[i], depth + 1);
      if (v !== arr[i]) (out ??= arr.slice())[i] = v;
    }
    return out ?? arr;
  }
  if (ctor === Object || ctor === undefined) {
    const obj = value as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const key in obj) {
      const v = toWire(obj[key], depth + 1);
      if (v !== obj[key]) (out ??= { ...obj })[key] = v;
    }
    return out ?? obj;
  }
  return value;
}

/** Encodes one value. Maps, typed arrays, Buffers, Dates, Sets and bigints round-trip. */
export function encode(value: unknown): Buffer {
  return packr.pack(toWire(value));
}

/** Decodes one value; throws `TypeError` with a readable reason on malformed bytes. */
export function decode<T = unknown>(bytes: Uint8Array): T {
  if (bytes.length === 0) throw new TypeError('empty MessagePack payload');
  try {
    return packr.unpack(bytes) as T;
  } catch (err) {
    throw new TypeError(`malformed MessagePack payload: ${(err as Error).message}`);
  }
}

/** Encodes a positional argument list as the wire format wants it: one MessagePack array. */
export function encodeArgs(args: readonly unknown[]): Buffer {
  return encode(args);
}

export function decodeArgs(bytes: Uint8Array): unknown[] {
  const value = decode(bytes);
  if (!Array.isArray(value)) {
    throw new TypeError(`arguments must be a MessagePack array, got ${value === null ? 'nil' : typeof value}`);
  }
  return value;
}
