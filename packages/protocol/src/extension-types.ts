// The MessagePack extension types of the wire format (proto/wire-format.md). Every one is
// a complete ext (header, type, payload) whose payload stands on its own, so a decoder
// that does not know the type can skip it or hand it over as raw bytes.

/** `undefined` (full-fidelity profile only): payload the single byte 00. */
export const UNDEFINED_EXTENSION_TYPE = 0x00;
/** `bigint` outside int64/uint64: payload big-endian two's complement. */
export const BIGINT_EXTENSION_TYPE = 0x42;
/** `Map` (full-fidelity profile): payload one MessagePack array of `[key, value]` pairs. */
export const MAP_EXTENSION_TYPE = 0x4d;
/** `Error`: payload one MessagePack array `[name, message]` or `[name, message, cause]`. */
export const ERROR_EXTENSION_TYPE = 0x65;
/** `Set` (full-fidelity profile): payload one MessagePack array of the members. */
export const SET_EXTENSION_TYPE = 0x73;
/** Typed arrays, `ArrayBuffer`, `DataView`: payload one kind byte, then the raw bytes. */
export const TYPED_ARRAY_EXTENSION_TYPE = 0x74;
/** `RegExp`: payload one MessagePack array `[source, flags]`. */
export const REGEXP_EXTENSION_TYPE = 0x78;
/** `Date`: the MessagePack standard timestamp. */
export const TIMESTAMP_EXTENSION_TYPE = -1;

/**
 * The kind byte that opens a typed-array payload, by the value's `Symbol.toStringTag`.
 * Elements follow in little-endian order, the memory order of every platform Node runs on.
 */
export const TYPED_ARRAY_KINDS = {
  Int8Array: 0,
  Uint8Array: 1,
  Uint8ClampedArray: 2,
  Int16Array: 3,
  Uint16Array: 4,
  Int32Array: 5,
  Uint32Array: 6,
  Float32Array: 7,
  Float64Array: 8,
  BigInt64Array: 9,
  BigUint64Array: 10,
  ArrayBuffer: 16,
  DataView: 17,
} as const;
export type TypedArrayKind = keyof typeof TYPED_ARRAY_KINDS;
