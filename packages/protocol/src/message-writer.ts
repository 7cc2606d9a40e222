// Serializes the generated protobuf messages for grpc-js. ts-proto's encoders drive a
// writer (@bufbuild/protobuf's BinaryWriter by default) that grows one buffer by doubling,
// shifts a nested message's bytes along when its length needs more than one byte, and
// copies the whole buffer out at the end: a payload part nested three deep was copied
// five or six times and its doubled buffers fed the garbage collector. This writer keeps
// large byte fields by reference and copies every byte once, into a buffer of the exact
// size. The bytes are those BinaryWriter writes, for every message (tested against it).
import { protoInt64 } from '@bufbuild/protobuf';
import type { BinaryWriter } from '@bufbuild/protobuf/wire';

/** A bytes field at least this long is kept by reference until the message is complete. */
const BY_REFERENCE_BYTES = 1024;
const INITIAL_SCRATCH = 4096;
/** A scratch buffer grown past this for one message is dropped afterwards. */
const MAX_RETAINED_SCRATCH = 256 * 1024;
/**
 * Largest message finishView() assembles in a reused buffer (a batch of payload parts
 * fits); a larger one gets a buffer of its own, as from finishBuffer().
 */
const MAX_VIEW_BYTES = 2 * 1024 * 1024;
const UINT32_MAX = 0xffffffff;
const TWO_32 = 2 ** 32;

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

function assertUint32(value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new Error(`invalid uint32: ${typeof value}`);
  if (!Number.isInteger(value) || value > UINT32_MAX || value < 0) throw new Error(`invalid uint32: ${value}`);
}

function assertInt32(value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new Error(`invalid int32: ${typeof value}`);
  if (!Number.isInteger(value) || value > 0x7fffffff || value < -0x80000000) throw new Error(`invalid int32: ${value}`);
}

/**
 * The subset of BinaryWriter that ts-proto's generated encoders call (a test checks the
 * generated files call nothing else). Small fields go into a reused scratch buffer; a
 * large bytes field is recorded as a reference at its place in the scratch bytes.
 */
export class MessageWriter {
  private buf = Buffer.allocUnsafe(INITIAL_SCRATCH);
  private pos = 0;
  /** Large bytes fields, each inserted before scratch offset `refAt[i]`. */
  private readonly refs: Uint8Array[] = [];
  private readonly refAt: number[] = [];
  private refBytes = 0;
  /** Per open fork: the scratch position of its one reserved length byte, and refBytes then. */
  private readonly forkPos: number[] = [];
  private readonly forkRefBytes: number[] = [];
  busy = false;
  /** Where finishView() assembles a message with referenced fields. */
  private assembly = Buffer.alloc(0);

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint32(value: number): this {
    assertUint32(value);
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (value > 0x7f) {
      b[p++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    b[p++] = value;
    this.pos = p;
    return this;
  }

  int32(value: number): this {
    assertInt32(value);
    if (value >= 0) return this.uint32(value);
    // Negative: sign-extended to 64 bits, ten bytes.
    this.ensure(10);
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value >>= 7;
    }
    this.buf[this.pos++] = 1;
    return this;
  }

  uint64(value: number | bigint | string): this {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return this.varint64(value % TWO_32, Math.floor(value / TWO_32));
    const { lo, hi } = protoInt64.uEnc(value);
    return this.varint64(lo >>> 0, hi >>> 0);
  }

  /** A varint of the unsigned 64-bit value hi·2³² + lo (both unsigned 32-bit). */
  private varint64(lo: number, hi: number): this {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (hi > 0 || lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
    return this;
  }

  bool(value: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
    return this;
  }

  double(value: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
    return this;
  }

  string(value: string): this {
    if (typeof value !== 'string') value = String(value);
    const n = value.length;
    if (n < 0x80) {
      this.ensure(n + 1);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c > 0x7f) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return this;
      }
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.uint32(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(value, this.pos, bytes, 'utf8');
    return this;
  }

  bytes(value: Uint8Array): this {
    const n = value.byteLength;
    this.uint32(n);
    if (n < BY_REFERENCE_BYTES) {
      this.ensure(n);
      this.buf.set(value, this.pos);
      this.pos += n;
    } else {
      this.refs.push(value);
      this.refAt.push(this.pos);
      this.refBytes += n;
    }
    return this;
  }

  fork(): this {
    this.ensure(1);
    this.forkPos.push(this.pos);
    this.forkRefBytes.push(this.refBytes);
    this.pos += 1;
    return this;
  }

  join(): this {
    const at = this.forkPos.pop();
    const refBytesBefore = this.forkRefBytes.pop();
    if (at === undefined || refBytesBefore === undefined) throw new Error('invalid state, fork stack empty');
    const length = this.pos - at - 1 + (this.refBytes - refBytesBefore);
    const prefix = varintSize(length);
    if (prefix > 1) {
      // The fork reserved one byte: move what was written since (scratch bytes only:
      // large fields are references, whose places move with it).
      const shift = prefix - 1;
      this.ensure(shift);
      this.buf.copyWithin(at + prefix, at + 1, this.pos);
      for (let i = this.refAt.length - 1; i >= 0 && this.refAt[i]! > at; i--) this.refAt[i]! += shift;
      this.pos += shift;
    }
    const end = this.pos;
    this.pos = at;
    this.uint32(length);
    this.pos = end;
    return this;
  }

  /** The message: every scratch byte and referenced field copied once into one buffer of the exact size. */
  finishBuffer(): Buffer {
    let out: Buffer;
    if (this.refs.length === 0) {
      out = Buffer.allocUnsafe(this.pos);
      this.buf.copy(out, 0, 0, this.pos);
    } else {
      out = Buffer.allocUnsafeSlow(this.pos + this.refBytes);
      this.assemble(out);
    }
    this.reset();
    return out;
  }

  /**
   * The message as a view of a buffer this writer reuses: valid only until the writer's
   * next message. For a caller that copies it at once (grpc-js's server frames a response
   * by copying it behind the 5-byte gRPC prefix before it returns); it saves that caller
   * one allocation and one copy of every byte per message.
   */
  finishView(): Buffer {
    const size = this.pos + this.refBytes;
    if (size > MAX_VIEW_BYTES && this.refs.length > 0) return this.finishBuffer();
    let out: Buffer;
    if (this.refs.length === 0) out = this.buf.subarray(0, this.pos);
    else {
      if (this.assembly.length < size) this.assembly = Buffer.allocUnsafeSlow(Math.min(MAX_VIEW_BYTES, Math.max(size, 2 * this.assembly.length)));
      out = this.assembly.subarray(0, size);
      this.assemble(out);
    }
    // reset() may drop an oversized scratch buffer; the view keeps the memory it shows.
    this.reset();
    return out;
  }

  /** Scratch bytes and referenced fields, in order, into `out` (exactly their size). */
  private assemble(out: Buffer): void {
    const refs = this.refs;
    let from = 0;
    let to = 0;
    for (let i = 0; i < refs.length; i++) {
      const at = this.refAt[i]!;
      to += this.buf.copy(out, to, from, at);
      from = at;
      out.set(refs[i]!, to);
      to += refs[i]!.byteLength;
    }
    this.buf.copy(out, to, from, this.pos);
  }

  reset(): void {
    this.pos = 0;
    this.refs.length = 0;
    this.refAt.length = 0;
    this.refBytes = 0;
    this.forkPos.length = 0;
    this.forkRefBytes.length = 0;
    if (this.buf.length > MAX_RETAINED_SCRATCH) this.buf = Buffer.allocUnsafe(INITIAL_SCRATCH);
  }
}

type Encodes<T> = { encode(message: T, writer?: BinaryWriter): BinaryWriter };

const shared = new MessageWriter();
/** Writes responses only, so a view it returned is never overwritten by a request's serializer. */
const viewing = new MessageWriter();

/** The serialized message, for grpc-js's serializers (the generated service definitions call it). */
export function serializeMessage<T>(type: Encodes<T>, message: T): Buffer {
  return serializeWith(type, message, false);
}

/**
 * The serialized message as a view valid until the next message is serialized: only for
 * a server's response serializer, which grpc-js calls and copies from at once (see
 * MessageWriter.finishView). grpc-js's client may hold a request's bytes (to retry, or
 * until the call starts), so requests use serializeMessage.
 */
export function serializeResponse<T>(type: Encodes<T>, message: T): Buffer {
  return serializeWith(type, message, true);
}

function serializeWith<T>(type: Encodes<T>, message: T, view: boolean): Buffer {
  // A serializer does not run inside another, but a second writer keeps that true anyway.
  const free = view ? viewing : shared;
  const writer = free.busy ? new MessageWriter() : free;
  writer.busy = true;
  try {
    type.encode(message, writer as unknown as BinaryWriter);
    return view ? writer.finishView() : writer.finishBuffer();
  } catch (err) {
    writer.reset();
    throw err;
  } finally {
    writer.busy = false;
  }
}
