// Reads MessagePack as proto/wire-format.md describes it. It accepts any standard
// encoding of a value (a decoder must: other writers choose other header sizes) and the
// extension payloads exactly as documented; anything else is refused with a reason
// rather than guessed at, since arguments come from clients in any language.
import {
  BIGINT_EXTENSION_TYPE,
  ERROR_EXTENSION_TYPE,
  MAP_EXTENSION_TYPE,
  REGEXP_EXTENSION_TYPE,
  SET_EXTENSION_TYPE,
  TIMESTAMP_EXTENSION_TYPE,
  TYPED_ARRAY_EXTENSION_TYPE,
  TYPED_ARRAY_KINDS,
  UNDEFINED_EXTENSION_TYPE,
} from './extension-types.js';
import { MAX_DEPTH } from './msgpack-encoder.js';

/** Below this length a string is decoded in JS when it is ASCII. */
const SHORT_STRING = 24;

type TypedArrayConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;
const TYPED_ARRAYS_BY_KIND = new Map<number, { ctor: TypedArrayConstructor; bytes: number }>(
  (
    [
      [Int8Array, 1],
      [Uint8Array, 1],
      [Uint8ClampedArray, 1],
      [Int16Array, 2],
      [Uint16Array, 2],
      [Int32Array, 4],
      [Uint32Array, 4],
      [Float32Array, 4],
      [Float64Array, 8],
      [BigInt64Array, 8],
      [BigUint64Array, 8],
    ] as const
  ).map(([ctor, bytes]) => [TYPED_ARRAY_KINDS[ctor.name as keyof typeof TYPED_ARRAY_KINDS], { ctor: ctor as TypedArrayConstructor, bytes }]),
);

// Buffer's own UTF-8 reader, without the encoding dispatch of `toString`; `toString`
// where it is missing. Invalid sequences become U+FFFD either way.
const bufferUtf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (start: number, end: number) => string }).utf8Slice;
const nativeUtf8Slice: (buf: Buffer, start: number, end: number) => string = bufferUtf8Slice
  ? (buf, start, end) => bufferUtf8Slice.call(buf, start, end)
  : (buf, start, end) => buf.toString('utf8', start, end);

/** Error classes an Error extension may name; any other name gives an `Error` carrying it. */
const ERROR_CLASSES: Record<string, ErrorConstructor> = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

/** Why a payload is malformed; the codec turns it into its TypeError. */
export class MalformedPayload extends Error {}

/** One decode over one source; extension payloads are read in place, without copies. */
export class Decoder {
  private readonly buf: Buffer;
  private readonly view: DataView;
  private pos = 0;
  /** End of the innermost payload being read: a value may not run past it. */
  private end: number;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.end = this.buf.length;
  }

  /** Exactly one value filling the source. */
  decodeAll(): unknown {
    const value = this.read(0);
    if (this.pos !== this.end) throw new MalformedPayload(`${this.end - this.pos} bytes after the value`);
    return value;
  }

  private need(n: number): void {
    if (n > this.end - this.pos) throw new MalformedPayload(`truncated: needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`);
  }

  private read(depth: number): unknown {
    this.need(1);
    const b = this.buf[this.pos++]!;
    if (b < 0x80) return b;
    if (b < 0x90) return this.readMap(b & 0x0f, depth);
    if (b < 0xa0) return this.readArray(b & 0x0f, depth);
    if (b < 0xc0) return this.readString(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.readBin(this.uint(1));
      case 0xc5:
        return this.readBin(this.uint(2));
      case 0xc6:
        return this.readBin(this.uint(4));
      case 0xc7:
        return this.readExt(this.uint(1), depth);
      case 0xc8:
        return this.readExt(this.uint(2), depth);
      case 0xc9:
        return this.readExt(this.uint(4), depth);
      case 0xca:
        this.need(4);
        this.pos += 4;
        return this.view.getFloat32(this.pos - 4);
      case 0xcb:
        this.need(8);
        this.pos += 8;
        return this.view.getFloat64(this.pos - 8);
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        this.need(8);
        this.pos += 8;
        return this.view.getBigUint64(this.pos - 8);
      case 0xd0:
        this.need(1);
        return this.view.getInt8(this.pos++);
      case 0xd1:
        this.need(2);
        this.pos += 2;
        return this.view.getInt16(this.pos - 2);
      case 0xd2:
        this.need(4);
        this.pos += 4;
        return this.view.getInt32(this.pos - 4);
      case 0xd3:
        this.need(8);
        this.pos += 8;
        return this.view.getBigInt64(this.pos - 8);
      case 0xd4:
        return this.readExt(1, depth);
      case 0xd5:
        return this.readExt(2, depth);
      case 0xd6:
        return this.readExt(4, depth);
      case 0xd7:
        return this.readExt(8, depth);
      case 0xd8:
        return this.readExt(16, depth);
      case 0xd9:
        return this.readString(this.uint(1));
      case 0xda:
        return this.readString(this.uint(2));
      case 0xdb:
        return this.readString(this.uint(4));
      case 0xdc:
        return this.readArray(this.uint(2), depth);
      case 0xdd:
        return this.readArray(this.uint(4), depth);
      case 0xde:
        return this.readMap(this.uint(2), depth);
      case 0xdf:
        return this.readMap(this.uint(4), depth);
      default:
        throw new MalformedPayload(`byte 0x${b.toString(16)} at offset ${this.pos - 1} starts no MessagePack value`);
    }
  }

  private uint(bytes: 1 | 2 | 4): number {
    this.need(bytes);
    const at = this.pos;
    this.pos += bytes;
    return bytes === 1 ? this.buf[at]! : bytes === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }

  private deeper(depth: number): number {
    if (depth >= MAX_DEPTH) throw new MalformedPayload(`nests deeper than ${MAX_DEPTH} levels`);
    return depth + 1;
  }

  private readString(n: number): string {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    if (n < SHORT_STRING) {
      let s = '';
      for (let i = start; i < this.pos; i++) {
        const c = this.buf[i]!;
        if (c >= 0x80) return nativeUtf8Slice(this.buf, start, this.pos);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return nativeUtf8Slice(this.buf, start, this.pos);
  }

  /** A view of the source, not a copy: large binaries cost nothing to decode. */
  private readBin(n: number): Buffer {
    this.need(n);
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }

  private readArray(n: number, depth: number): unknown[] {
    // Every element takes at least one byte: a count larger than what is left is a lie,
    // refused before it allocates.
    this.need(n);
    const inner = this.deeper(depth);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.read(inner);
    return out;
  }

  /** A MessagePack map is a plain object; keys that are not strings become their string form. */
  private readMap(n: number, depth: number): Record<string, unknown> {
    this.need(2 * n);
    const inner = this.deeper(depth);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const keyAt = this.pos;
      const raw = this.read(inner);
      let key: string;
      if (typeof raw === 'string') key = raw;
      else if (typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean' || raw === null) key = String(raw);
      else throw new MalformedPayload(`map key at offset ${keyAt} is not a string, number, boolean or nil (send a Map, extension 0x4d, for other keys)`);
      const value = this.read(inner);
      // An own property, never the prototype setter.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
    return out;
  }

  private readExt(length: number, depth: number): unknown {
    this.need(1 + length);
    const type = this.view.getInt8(this.pos);
    const start = this.pos + 1;
    this.pos = start + length;
    switch (type) {
      case UNDEFINED_EXTENSION_TYPE:
        if (length !== 1 || this.buf[start] !== 0) throw new MalformedPayload(`extension 0 (undefined) must hold the single byte 00`);
        return undefined;
      case TIMESTAMP_EXTENSION_TYPE:
        return this.readTimestamp(start, length);
      case BIGINT_EXTENSION_TYPE:
        return this.readBigInt(start, length);
      case TYPED_ARRAY_EXTENSION_TYPE:
        return this.readTypedArray(start, length);
      case MAP_EXTENSION_TYPE: {
        const pairs = this.readPayloadArray(type, start, length, depth);
        const map = new Map<unknown, unknown>();
        for (const pair of pairs) {
          if (!Array.isArray(pair) || pair.length !== 2) throw new MalformedPayload(`extension 0x4d (Map) must hold an array of [key, value] pairs`);
          map.set(pair[0], pair[1]);
        }
        return map;
      }
      case SET_EXTENSION_TYPE:
        return new Set(this.readPayloadArray(type, start, length, depth));
      case ERROR_EXTENSION_TYPE:
        return this.readError(this.readPayloadArray(type, start, length, depth));
      case REGEXP_EXTENSION_TYPE: {
        const parts = this.readPayloadArray(type, start, length, depth);
        if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
          throw new MalformedPayload('extension 0x78 (RegExp) must hold [source, flags]');
        }
        try {
          return new RegExp(parts[0], parts[1]);
        } catch (err) {
          throw new MalformedPayload(`extension 0x78 (RegExp): ${(err as Error).message}`);
        }
      }
      default:
        throw new MalformedPayload(`unknown extension type ${type} at offset ${start - 1}`);
    }
  }

  /** The payload as one MessagePack array that fills it exactly. */
  private readPayloadArray(type: number, start: number, length: number, depth: number): unknown[] {
    const after = this.pos;
    const outerEnd = this.end;
    this.pos = start;
    this.end = start + length;
    let value: unknown;
    try {
      // The payload's array counts its own level, as the encoder counts it.
      value = this.read(depth);
      if (this.pos !== this.end) throw new MalformedPayload(`extension 0x${type.toString(16)} payload holds more than one value`);
    } finally {
      this.end = outerEnd;
      this.pos = after;
    }
    if (!Array.isArray(value)) throw new MalformedPayload(`extension 0x${type.toString(16)} payload must be a MessagePack array`);
    return value;
  }

  private readTimestamp(at: number, length: number): Date {
    let sec: number;
    let nsec: number;
    if (length === 4) {
      sec = this.view.getUint32(at);
      nsec = 0;
    } else if (length === 8) {
      const high = this.view.getUint32(at);
      nsec = high >>> 2;
      sec = (high & 3) * 2 ** 32 + this.view.getUint32(at + 4);
    } else if (length === 12) {
      nsec = this.view.getUint32(at);
      sec = Number(this.view.getBigInt64(at + 4));
    } else {
      throw new MalformedPayload(`timestamp extension of ${length} bytes (4, 8 or 12 expected)`);
    }
    if (nsec >= 1_000_000_000) throw new MalformedPayload('timestamp nanoseconds above 999999999');
    // A Date holds milliseconds: finer digits are dropped.
    return new Date(sec * 1000 + Math.floor(nsec / 1_000_000));
  }

  private readBigInt(at: number, length: number): bigint {
    if (length === 0) throw new MalformedPayload('extension 0x42 (bigint) is empty');
    const unsigned = BigInt(`0x${this.buf.toString('hex', at, at + length)}`);
    return this.buf[at]! & 0x80 ? unsigned - (1n << BigInt(length * 8)) : unsigned;
  }

  private readTypedArray(at: number, length: number): ArrayBufferView | ArrayBuffer {
    if (length === 0) throw new MalformedPayload('extension 0x74 (typed array) is empty');
    const kind = this.buf[at]!;
    // A copy: the elements must be aligned, and the source belongs to the message.
    const buffer = new ArrayBuffer(length - 1);
    new Uint8Array(buffer).set(this.buf.subarray(at + 1, at + length));
    if (kind === TYPED_ARRAY_KINDS.ArrayBuffer) return buffer;
    if (kind === TYPED_ARRAY_KINDS.DataView) return new DataView(buffer);
    const found = TYPED_ARRAYS_BY_KIND.get(kind);
    if (found === undefined) throw new MalformedPayload(`extension 0x74 (typed array) of unknown kind ${kind}`);
    if ((length - 1) % found.bytes !== 0) throw new MalformedPayload(`extension 0x74: ${length - 1} bytes is not a whole number of ${found.ctor.name} elements`);
    return new found.ctor(buffer);
  }

  private readError(parts: unknown[]): Error {
    if ((parts.length !== 2 && parts.length !== 3) || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
      throw new MalformedPayload('extension 0x65 (Error) must hold [name, message] or [name, message, cause]');
    }
    const [name, message] = parts;
    const options = parts.length === 3 ? { cause: parts[2] } : undefined;
    const Class = Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name]! : Error;
    const err = new Class(message, options);
    if (err.name !== name) err.name = name;
    return err;
  }
}
