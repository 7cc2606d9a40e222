// Writes MessagePack as proto/wire-format.md describes it, byte for byte. The codec owns
// its writer rather than configuring a library's: the library it replaced wrote Map,
// Set, Error and RegExp as a 3-byte tag followed by a separate value, which desynchronises
// every decoder that does not know the tag, and its extension table is shared by the
// whole process.
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
  type TypedArrayKind,
} from './extension-types.js';
import { SegmentedBytes } from './segmented-bytes.js';

/** Deepest nesting of MessagePack arrays and maps written or read; deeper is taken for a cycle. */
export const MAX_DEPTH = 256;

const INITIAL_BYTES = 8192;
/** A buffer grown past this for one large value is left to that value, not reused. */
const MAX_RETAINED_BYTES = 1024 * 1024;
/** A new value starts in a fresh buffer when less than this is left in the current one. */
const MIN_ROOM = 2048;
/** Below this length a string is encoded in JS; above, Buffer's native writer is faster. */
const SHORT_STRING = 64;
/** The longest ext header: c9, a 4-byte length and the type. */
const MAX_EXT_HEADER = 6;

const TWO_32 = 2 ** 32;
const TWO_34 = 2 ** 34;
const INT64_MIN = -(2n ** 63n);
const INT64_LIMIT = 2n ** 63n;
const UINT64_LIMIT = 2n ** 64n;

/** Bytes an ext header takes for a payload of `length` bytes (header, length, type). */
function extHeaderLength(length: number): number {
  switch (length) {
    case 1:
    case 2:
    case 4:
    case 8:
    case 16:
      return 2;
    default:
      return length < 0x100 ? 3 : length < 0x10000 ? 4 : 6;
  }
}

function stringHeaderLength(bytes: number): number {
  return bytes < 32 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
}

/**
 * One reusable writer. A result is a view of the writer's buffer; later values are
 * written after it, never over it, so results stay valid.
 */
export class Encoder {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private pos = 0;
  /** Where the value being written starts; growth moves it to 0. */
  private start = 0;
  private portable = false;
  /** A user's toJSON may itself encode: the module then uses a second writer. */
  busy = false;
  /** Segmented encoding: chunk boundaries fall at multiples of this many bytes (0: off). */
  private align = 0;
  /** Extensions being written whose header follows their payload's length (no chunks inside). */
  private nested = 0;
  /** Chunks of large byte arrays, each inserted before offset `chunkAt[i]` (from `start`) of the own bytes. */
  private readonly chunks: Buffer[] = [];
  private readonly chunkAt: number[] = [];
  private chunkBytes = 0;

  /**
   * The same bytes as encode(), as segments: every byte array of `align` bytes or more is
   * copied into chunks whose boundaries fall at multiples of `align` bytes of the whole
   * encoding (inside Map, Set, Error and RegExp extensions it is written in line), and the
   * writer's own bytes between them are views, valid as encode()'s result is. A shorter
   * array is written in line: it would gain nothing, and an encoding that fits one part
   * is sent whole.
   */
  encodeSegments(value: unknown, portable: boolean, align: number): SegmentedBytes {
    this.align = Math.max(1, Math.floor(align));
    try {
      const own = this.encode(value, portable);
      if (this.chunks.length === 0) return SegmentedBytes.of(own);
      const segments: Buffer[] = [];
      let from = 0;
      for (let i = 0; i < this.chunks.length; i++) {
        const at = this.chunkAt[i]!;
        if (at > from) segments.push(own.subarray(from, at));
        segments.push(this.chunks[i]!);
        from = at;
      }
      if (from < own.length) segments.push(own.subarray(from));
      return new SegmentedBytes(segments, own.length + this.chunkBytes);
    } finally {
      this.align = 0;
      this.chunks.length = 0;
      this.chunkAt.length = 0;
      this.chunkBytes = 0;
    }
  }

  private chunked(length: number): boolean {
    return this.align > 0 && this.nested === 0 && length >= this.align;
  }

  /** Copies `bytes` into chunks at the current position, each ending at a multiple of `align`. */
  private writeChunks(bytes: Uint8Array): void {
    const at = this.pos - this.start;
    let offset = at + this.chunkBytes;
    for (let from = 0; from < bytes.length; ) {
      const n = Math.min(this.align - (offset % this.align), bytes.length - from);
      const chunk = Buffer.allocUnsafe(n);
      chunk.set(bytes.subarray(from, from + n));
      this.chunks.push(chunk);
      this.chunkAt.push(at);
      from += n;
      offset += n;
    }
    this.chunkBytes += bytes.length;
  }

  encode(value: unknown, portable: boolean): Buffer {
    if (this.buf.length - this.pos < MIN_ROOM) this.replace(INITIAL_BYTES, 0);
    this.start = this.pos;
    this.portable = portable;
    this.busy = true;
    try {
      this.write(value, 0);
    } catch (err) {
      this.pos = this.start;
      throw err;
    } finally {
      this.busy = false;
    }
    const out = this.buf.subarray(this.start, this.pos);
    if (this.buf.length > MAX_RETAINED_BYTES) this.replace(INITIAL_BYTES, 0);
    return out;
  }

  /** Room for `n` more bytes; moves the value written so far into a larger buffer. */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    // Doubling keeps many small writes cheap; a single large write (a big bin or string)
    // gets room for itself and the usual headroom, not twice its size.
    this.replace(Math.max(INITIAL_BYTES, 2 * used, used + n + INITIAL_BYTES), used);
  }

  private replace(size: number, keep: number): void {
    const next = Buffer.allocUnsafe(size);
    if (keep > 0) this.buf.copy(next, 0, this.start, this.start + keep);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
    this.start = 0;
    this.pos = keep;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private write(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        return this.writeString(value);
      case 'number':
        return this.writeNumber(value);
      case 'boolean':
        return this.byte(value ? 0xc3 : 0xc2);
      case 'object':
        return value === null ? this.byte(0xc0) : this.writeObject(value, depth);
      case 'bigint':
        return this.writeBigInt(value);
      // A function is dropped the way JSON drops it: it travels as undefined.
      case 'undefined':
      case 'function':
        return this.writeUndefined();
      default:
        throw new TypeError(`cannot encode a ${typeof value}`);
    }
  }

  private writeUndefined(): void {
    if (this.portable) return this.byte(0xc0);
    this.ensure(3);
    this.buf[this.pos++] = 0xd4;
    this.buf[this.pos++] = UNDEFINED_EXTENSION_TYPE;
    this.buf[this.pos++] = 0x00;
  }

  private writeNumber(v: number): void {
    this.ensure(9);
    const b = this.buf;
    // -0 fails neither bit test but is not an integer to MessagePack: it stays a float.
    if (v >>> 0 === v && (v !== 0 || 1 / v > 0)) {
      if (v < 0x80) b[this.pos++] = v;
      else if (v < 0x100) {
        b[this.pos++] = 0xcc;
        b[this.pos++] = v;
      } else if (v < 0x10000) {
        b[this.pos++] = 0xcd;
        this.view.setUint16(this.pos, v);
        this.pos += 2;
      } else {
        b[this.pos++] = 0xce;
        this.view.setUint32(this.pos, v);
        this.pos += 4;
      }
    } else if (v >> 0 === v && v !== 0) {
      if (v >= -32) b[this.pos++] = v & 0xff;
      else if (v >= -0x80) {
        b[this.pos++] = 0xd0;
        this.view.setInt8(this.pos++, v);
      } else if (v >= -0x8000) {
        b[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, v);
        this.pos += 2;
      } else {
        b[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, v);
        this.pos += 4;
      }
    } else {
      b[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
    }
  }

  private writeBigInt(v: bigint): void {
    if (v >= INT64_MIN && v < INT64_LIMIT) {
      this.ensure(9);
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, v);
      this.pos += 8;
    } else if (v >= 0n && v < UINT64_LIMIT) {
      this.ensure(9);
      this.buf[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, v);
      this.pos += 8;
    } else {
      // Big-endian two's complement in the fewest whole 64-bit words that hold the sign.
      const magnitudeBits = (v < 0n ? -v - 1n : v).toString(2).length;
      const words = Math.ceil((magnitudeBits + 1) / 64);
      const unsigned = v < 0n ? (1n << BigInt(words * 64)) + v : v;
      const payload = Buffer.from(unsigned.toString(16).padStart(words * 16, '0'), 'hex');
      this.writeExtHeader(BIGINT_EXTENSION_TYPE, payload.length);
      this.writeBytes(payload);
    }
  }

  private writeString(s: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit; the header is sized for that and
    // the text moved down when the real length needs a shorter one.
    const most = s.length * 3;
    const reserved = stringHeaderLength(most);
    this.ensure(reserved + most);
    const at = this.pos + reserved;
    const bytes = s.length < SHORT_STRING ? utf8Write(this.buf, s, at) : nativeUtf8Write(this.buf, s, at);
    const header = stringHeaderLength(bytes);
    if (header !== reserved) this.buf.copyWithin(this.pos + header, at, at + bytes);
    const b = this.buf;
    if (header === 1) b[this.pos] = 0xa0 | bytes;
    else if (header === 2) {
      b[this.pos] = 0xd9;
      b[this.pos + 1] = bytes;
    } else if (header === 3) {
      b[this.pos] = 0xda;
      this.view.setUint16(this.pos + 1, bytes);
    } else {
      b[this.pos] = 0xdb;
      this.view.setUint32(this.pos + 1, bytes);
    }
    this.pos += header + bytes;
  }

  private writeBytes(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  private writeBin(bytes: Uint8Array): void {
    const n = bytes.length;
    const chunked = this.chunked(n);
    this.ensure(chunked ? 5 : 5 + n);
    if (n < 0x100) {
      this.buf[this.pos++] = 0xc4;
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xc5;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xc6;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
    if (chunked) this.writeChunks(bytes);
    else this.writeBytes(bytes);
  }

  private writeArrayHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private writeMapHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x80 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  /** The shortest ext header for `length` payload bytes: fixext 1/2/4/8/16, else ext 8/16/32. */
  private writeExtHeader(type: number, length: number, inLine = length): void {
    this.ensure(MAX_EXT_HEADER + inLine);
    this.putExtHeader(this.pos, type, length);
    this.pos += extHeaderLength(length);
  }

  private putExtHeader(at: number, type: number, length: number): void {
    const b = this.buf;
    switch (length) {
      case 1:
        b[at++] = 0xd4;
        break;
      case 2:
        b[at++] = 0xd5;
        break;
      case 4:
        b[at++] = 0xd6;
        break;
      case 8:
        b[at++] = 0xd7;
        break;
      case 16:
        b[at++] = 0xd8;
        break;
      default:
        if (length < 0x100) {
          b[at++] = 0xc7;
          b[at++] = length;
        } else if (length < 0x10000) {
          b[at++] = 0xc8;
          this.view.setUint16(at, length);
          at += 2;
        } else {
          b[at++] = 0xc9;
          this.view.setUint32(at, length);
          at += 4;
        }
    }
    b[at] = type & 0xff;
  }

  /**
   * An ext whose payload is one MessagePack value written by `body`. The payload is
   * written after room for the longest header, then moved down to follow the shortest.
   */
  private writeNestedExt(type: number, body: () => void): void {
    this.ensure(MAX_EXT_HEADER);
    // Offsets from `start`: growth inside `body` moves the buffer.
    const headerAt = this.pos - this.start;
    this.pos += MAX_EXT_HEADER;
    this.nested++;
    try {
      body();
    } finally {
      this.nested--;
    }
    const payloadAt = this.start + headerAt + MAX_EXT_HEADER;
    const length = this.pos - payloadAt;
    const header = extHeaderLength(length);
    if (header !== MAX_EXT_HEADER) {
      this.buf.copyWithin(this.start + headerAt + header, payloadAt, this.pos);
      this.pos -= MAX_EXT_HEADER - header;
    }
    this.putExtHeader(this.start + headerAt, type, length);
  }

  /**
   * Every array and map on the wire counts one level, inside extension payloads too, as
   * the decoder counts them; a cycle ends here instead of exhausting the stack.
   */
  private deeper(depth: number): number {
    if (depth >= MAX_DEPTH) throw new TypeError(`value nests deeper than ${MAX_DEPTH} levels (cycle?)`);
    return depth + 1;
  }

  private writeObject(value: object, depth: number): void {
    const ctor = value.constructor;
    if (ctor === Object || ctor === undefined) return this.writePlainObject(value as Record<string, unknown>, depth);
    if (Array.isArray(value)) {
      const inner = this.deeper(depth);
      this.writeArrayHeader(value.length);
      for (let i = 0; i < value.length; i++) this.write(value[i], inner);
      return;
    }
    if (Buffer.isBuffer(value)) return this.writeBin(value);
    if (ArrayBuffer.isView(value)) return this.writeTypedArray(value);
    if (value instanceof ArrayBuffer) return this.writeTypedArray(value);
    if (value instanceof Date) return this.writeDate(value);
    if (value instanceof Map) return this.writeMap(value, depth);
    if (value instanceof Set) return this.writeSet(value, depth);
    if (value instanceof Error) return this.writeError(value, depth);
    if (value instanceof RegExp) {
      this.deeper(depth);
      return this.writeNestedExt(REGEXP_EXTENSION_TYPE, () => {
        this.writeArrayHeader(2);
        this.writeString(value.source);
        this.writeString(value.flags);
      });
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const json: unknown = toJSON.call(value);
      // One level more, so that a toJSON returning fresh objects like itself still ends.
      if (json !== value) return this.write(json, this.deeper(depth));
    }
    this.writePlainObject(value as Record<string, unknown>, depth);
  }

  /** Own enumerable string keys, in property order. */
  private writePlainObject(obj: Record<string, unknown>, depth: number): void {
    const inner = this.deeper(depth);
    const keys = Object.keys(obj);
    this.writeMapHeader(keys.length);
    for (const key of keys) {
      this.writeString(key);
      this.write(obj[key], inner);
    }
  }

  private writeMap(map: Map<unknown, unknown>, depth: number): void {
    const inner = this.deeper(depth);
    if (this.portable) {
      this.writeMapHeader(map.size);
      for (const [k, v] of map) {
        this.write(k, inner);
        this.write(v, inner);
      }
      return;
    }
    const inPair = this.deeper(inner);
    this.writeNestedExt(MAP_EXTENSION_TYPE, () => {
      this.writeArrayHeader(map.size);
      for (const [k, v] of map) {
        this.byte(0x92);
        this.write(k, inPair);
        this.write(v, inPair);
      }
    });
  }

  private writeSet(set: Set<unknown>, depth: number): void {
    const inner = this.deeper(depth);
    const members = () => {
      this.writeArrayHeader(set.size);
      for (const v of set) this.write(v, inner);
    };
    if (this.portable) members();
    else this.writeNestedExt(SET_EXTENSION_TYPE, members);
  }

  private writeError(err: Error, depth: number): void {
    const inner = this.deeper(depth);
    const hasCause = Object.prototype.hasOwnProperty.call(err, 'cause');
    this.writeNestedExt(ERROR_EXTENSION_TYPE, () => {
      this.writeArrayHeader(hasCause ? 3 : 2);
      this.writeString(String(err.name));
      this.writeString(String(err.message));
      if (hasCause) this.write(err.cause, inner);
    });
  }

  private writeTypedArray(value: ArrayBufferView | ArrayBuffer): void {
    // The tag names the built-in kind even for a subclass.
    const tag = ArrayBuffer.isView(value) ? (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : 'ArrayBuffer';
    const kind = TYPED_ARRAY_KINDS[tag as TypedArrayKind] as number | undefined;
    if (kind === undefined) throw new TypeError(`cannot encode a ${tag}`);
    const bytes = ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
    const chunked = this.chunked(bytes.length);
    this.writeExtHeader(TYPED_ARRAY_EXTENSION_TYPE, 1 + bytes.length, chunked ? 1 : 1 + bytes.length);
    this.buf[this.pos++] = kind;
    if (chunked) this.writeChunks(bytes);
    else this.writeBytes(bytes);
  }

  /** The MessagePack timestamp in its shortest form; an invalid Date is nil, as in JSON. */
  private writeDate(date: Date): void {
    const ms = date.getTime();
    if (Number.isNaN(ms)) return this.byte(0xc0);
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1_000_000;
    if (nsec === 0 && sec >= 0 && sec < TWO_32) {
      this.writeExtHeader(TIMESTAMP_EXTENSION_TYPE, 4);
      this.view.setUint32(this.pos, sec);
      this.pos += 4;
    } else if (sec >= 0 && sec < TWO_34) {
      this.writeExtHeader(TIMESTAMP_EXTENSION_TYPE, 8);
      // 30 bits of nanoseconds, then 34 bits of seconds.
      this.view.setUint32(this.pos, nsec * 4 + Math.floor(sec / TWO_32));
      this.view.setUint32(this.pos + 4, sec % TWO_32);
      this.pos += 8;
    } else {
      this.writeExtHeader(TIMESTAMP_EXTENSION_TYPE, 12);
      this.view.setUint32(this.pos, nsec);
      this.view.setBigInt64(this.pos + 4, BigInt(sec));
      this.pos += 12;
    }
  }
}

// Buffer's own UTF-8 writer, without the encoding dispatch of `write` (several times
// faster on strings of a few hundred characters); `write` where it is missing.
const bufferUtf8Write = (Buffer.prototype as unknown as { utf8Write?: (s: string, offset: number, length: number) => number }).utf8Write;
const nativeUtf8Write: (buf: Buffer, s: string, at: number) => number = bufferUtf8Write
  ? (buf, s, at) => bufferUtf8Write.call(buf, s, at, buf.length - at)
  : (buf, s, at) => buf.write(s, at, 'utf8');

/**
 * UTF-8 of a short string, written in JS (a native call costs more than the loop). A lone
 * surrogate becomes U+FFFD, as Buffer's writer makes it, so both paths agree.
 */
function utf8Write(buf: Buffer, s: string, at: number): number {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) buf[p++] = c;
    else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[p++] = 0xf0 | (cp >> 18);
        buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[p++] = 0x80 | (cp & 0x3f);
      } else {
        buf[p++] = 0xef;
        buf[p++] = 0xbf;
        buf[p++] = 0xbd;
      }
    } else {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p - at;
}
