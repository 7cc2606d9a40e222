// MessagePack codec for arguments and results, exactly as proto/wire-format.md states it.
// The gateway never calls it on the call path: it routes on the protobuf envelope and
// relays these bytes untouched.
import type { CallOptions } from './generated/easyremote/v1/common.js';
import { Decoder } from './msgpack-decoder.js';
import { Encoder } from './msgpack-encoder.js';
import type { SegmentedBytes } from './segmented-bytes.js';

export * from './extension-types.js';
export { MAX_DEPTH } from './msgpack-encoder.js';
export { SegmentedBytes } from './segmented-bytes.js';

/**
 * How a result is encoded. 'full': Maps, Sets and undefined as extension types, so a
 * TypeScript caller gets back exactly what the handler returned. 'portable': Map as a
 * MessagePack map, Set as an array, undefined as nil, so stock decoders in other
 * languages read natural values. Everything else is encoded the same way in both.
 */
export type ResultProfile = 'full' | 'portable';

export interface EncodeOptions {
  /** The portable profile (default false: full fidelity). */
  portable?: boolean;
}

/** The profile a caller asked for: portable unless its CallOptions set full_fidelity. */
export function resultProfile(options: Pick<CallOptions, 'fullFidelity'> | undefined): ResultProfile {
  return options?.fullFidelity ? 'full' : 'portable';
}

const encoder = new Encoder();

/** Encodes one value; throws `TypeError` for what cannot be encoded (a symbol, a cycle). */
export function encode(value: unknown, options?: EncodeOptions): Buffer {
  const portable = options?.portable ?? false;
  // A toJSON that encodes runs while the shared writer is busy.
  return (encoder.busy ? new Encoder() : encoder).encode(value, portable);
}

/**
 * Encodes a handler's result (or one stream chunk) for the profile its caller asked for.
 * On a node: `encodeResult(value, invoke.portableResult ? 'portable' : 'full')`.
 */
export function encodeResult(value: unknown, profile: ResultProfile): Buffer {
  return encode(value, { portable: profile === 'portable' });
}

/**
 * encode()'s bytes as segments, for a payload that may travel in parts of `align` bytes:
 * each byte array of `align` bytes or more is copied into chunks that end at multiples of
 * `align` bytes of the encoding, so such a part is one chunk (see SegmentedBytes).
 */
export function encodeSegments(value: unknown, align: number, options?: EncodeOptions): SegmentedBytes {
  return (encoder.busy ? new Encoder() : encoder).encodeSegments(value, options?.portable ?? false, align);
}

/** encodeResult() as segments for parts of `align` bytes (see encodeSegments). */
export function encodeResultSegments(value: unknown, profile: ResultProfile, align: number): SegmentedBytes {
  return encodeSegments(value, align, { portable: profile === 'portable' });
}

/** Decodes one value of either profile; throws `TypeError` with a readable reason on malformed bytes. */
export function decode<T = unknown>(bytes: Uint8Array): T {
  if (bytes.length === 0) throw new TypeError('empty MessagePack payload');
  try {
    return new Decoder(bytes).decodeAll() as T;
  } catch (err) {
    throw new TypeError(`malformed MessagePack payload: ${(err as Error).message}`);
  }
}

/** Encodes a positional argument list as the wire format wants it: one MessagePack array. */
export function encodeArgs(args: readonly unknown[]): Buffer {
  return encode(args);
}

/** encodeArgs() as segments for parts of `align` bytes (see encodeSegments). */
export function encodeArgsSegments(args: readonly unknown[], align: number): SegmentedBytes {
  return encodeSegments(args, align);
}

export function decodeArgs(bytes: Uint8Array): unknown[] {
  const value = decode(bytes);
  if (!Array.isArray(value)) {
    throw new TypeError(`arguments must be a MessagePack array, got ${value === null ? 'nil' : typeof value}`);
  }
  return value;
}
