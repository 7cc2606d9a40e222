import { describe, expect, it } from 'vitest';
import { encode, encodeArgs, encodeArgsSegments, encodeSegments, SegmentedBytes } from '../src/index.js';

/** The smallest alignment the tests use: a byte array this long or longer is chunked at it. */
const CHUNKED_BYTES = 64 * 1024;

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Offsets of the segment boundaries within the encoding. */
function boundaries(s: SegmentedBytes): number[] {
  const out: number[] = [];
  let at = 0;
  for (const seg of s.segments) out.push((at += seg.length));
  return out;
}

describe('segmented encoding', () => {
  const big = bytes(3 * CHUNKED_BYTES + 123, 1);
  const values: Array<[string, unknown]> = [
    ['a small object', { id: 42, text: 'hello', values: [1, 2, 3] }],
    ['one large Buffer', [big]],
    ['a large Buffer after a string', ['prefix', big, 7]],
    ['two large Buffers and a typed array', [big, { second: bytes(CHUNKED_BYTES, 9), floats: new Float64Array(20_000).fill(1.5) }]],
    ['a Buffer just under the smallest alignment', [bytes(CHUNKED_BYTES - 1, 3)]],
    ['a large Buffer inside a Map', [new Map([['k', big]])]],
    ['a large Buffer inside a Set and an Error cause', [new Set([big]), Object.assign(new Error('x'), { cause: big })]],
  ];

  for (const [name, value] of values) {
    for (const align of [CHUNKED_BYTES, 100_000, 262_144]) {
      it(`${name}, align ${align}: the same bytes as encode()`, () => {
        const plain = encode(value);
        const s = encodeSegments(value, align);
        expect(s.length).toBe(plain.length);
        expect(Buffer.concat(s.segments as Buffer[]).equals(plain)).toBe(true);
        expect(s.whole().equals(plain)).toBe(true);
      });
    }
  }

  it('a large Buffer is chunked at every multiple of align inside it; inside a Map it is written in line', () => {
    const align = 100_000;
    const s = encodeSegments([big], align);
    const header = 1 + 5; // fixarray, bin 32
    const ends = boundaries(s);
    for (let k = Math.ceil(header / align) * align; k < header + big.length; k += align) if (k > header) expect(ends).toContain(k);
    expect(ends).toContain(header);
    expect(s.segments.length).toBe(1 + Math.ceil((header + big.length) / align));
    expect(encodeSegments([new Map([['k', big]])], align).segments).toHaveLength(1);
    expect(encodeSegments([new Map([['k', big]])], align, { portable: true }).segments.length).toBeGreaterThan(1);
    expect(encodeSegments({ small: 'value' }, align).segments).toHaveLength(1);
    // Shorter than align: in line, since an encoding within one part is sent whole.
    expect(encodeSegments([bytes(align - 1, 4)], align).segments).toHaveLength(1);
    expect(encodeSegments([bytes(align, 4)], align).segments.length).toBeGreaterThan(1);
  });

  it('a 1 MiB Buffer argument in 256 KiB alignment: parts 2, 3 and 4 are whole chunks, views without a copy', () => {
    const align = 262_144;
    const s = encodeArgsSegments([bytes(1024 * 1024, 5)], align);
    const plain = encodeArgs([bytes(1024 * 1024, 5)]);
    expect(s.length).toBe(plain.length);
    const ends = boundaries(s);
    for (const k of [1, 2, 3, 4]) expect(ends).toContain(k * align);
    for (let k = 1; k < 4; k++) {
      const part = s.slice(k * align, (k + 1) * align);
      expect(part.equals(plain.subarray(k * align, (k + 1) * align))).toBe(true);
      expect(s.segments.some((seg) => seg.buffer === part.buffer && seg.byteOffset === part.byteOffset && seg.length === part.length)).toBe(true);
    }
    // The first part spans the header and the first chunk: a copy, with the same bytes.
    expect(s.slice(0, align).equals(plain.subarray(0, align))).toBe(true);
    expect(s.slice(4 * align, 5 * align).equals(plain.subarray(4 * align))).toBe(true);
  });

  it('copies the caller\'s bytes at encoding time: changing them afterwards changes nothing', () => {
    const b = bytes(2 * CHUNKED_BYTES, 2);
    const s = encodeSegments([b], CHUNKED_BYTES);
    const before = Buffer.from(s.whole());
    b.fill(0);
    expect(s.whole().equals(before)).toBe(true);
  });

  it('slice() at every kind of boundary', () => {
    const segs = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from(''), Buffer.from('ij')];
    const s = new SegmentedBytes(segs, 10);
    const flat = 'abcdefghij';
    for (let from = 0; from <= 10; from++) {
      for (let to = from; to <= 12; to++) expect(s.slice(from, to).toString()).toBe(flat.slice(from, to));
    }
    expect(SegmentedBytes.of(Buffer.from('xyz')).whole().toString()).toBe('xyz');
  });

  it('an encoding that fails leaves the writer clean for the next one', () => {
    const cyclic: unknown[] = [big];
    cyclic.push(cyclic);
    expect(() => encodeSegments(cyclic, CHUNKED_BYTES)).toThrow(/nests deeper/);
    const s = encodeSegments([big], CHUNKED_BYTES);
    expect(s.whole().equals(encode([big]))).toBe(true);
    expect(encode({ a: 1 }).equals(encode({ a: 1 }))).toBe(true);
  });
});
