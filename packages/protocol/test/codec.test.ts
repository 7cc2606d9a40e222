// The codec beyond the documented vectors: header widths, what it refuses, buffer
// growth inside extensions, and the limits that keep hostile input cheap.
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, decode, decodeArgs, encode, encodeResult, resultProfile } from '../src/codec.js';

const bytes = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const nest = (levels: number): unknown => (levels === 0 ? 0 : [nest(levels - 1)]);

describe('encoding', () => {
  it('picks the 16- and 32-bit headers past the short forms', () => {
    expect(hexOf(encode('x'.repeat(300))).slice(0, 6)).toBe('da012c');
    expect(hexOf(encode('x'.repeat(70_000))).slice(0, 10)).toBe('db00011170');
    expect(hexOf(encode(Buffer.alloc(300))).slice(0, 6)).toBe('c5012c');
    expect(hexOf(encode(Buffer.alloc(70_000))).slice(0, 10)).toBe('c600011170');
    expect(hexOf(encode(new Array(20).fill(0))).slice(0, 6)).toBe('dc0014');
    expect(hexOf(encode(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])))).slice(0, 6)).toBe('de0014');
    expect(hexOf(encode(new Float32Array(100))).slice(0, 10)).toBe('c801917407');
    expect(hexOf(encode(new Uint8Array(70_000))).slice(0, 14)).toBe('c9000111717401');
    expect(hexOf(encode(new Map(Array.from({ length: 30 }, (_, i) => [`${'k'.repeat(10)}${i}`, i])))).slice(0, 2)).toBe('c8');
  });

  it('writes the same UTF-8 for short and long strings, lone surrogates included', () => {
    for (const s of ['a\ud800b', '\udc00', 'é😀日本', 'x\ud83d']) {
      for (const text of [s, s.repeat(40)]) {
        const body = Buffer.from(text, 'utf8');
        expect(encode(text).subarray(-body.length)).toEqual(body);
        expect(decode(encode(text))).toBe(Buffer.from(body).toString('utf8'));
      }
    }
  });

  it('keeps earlier results intact while the writer grows and moves on', () => {
    const first = encode({ a: 'first' });
    const copy = Buffer.from(first);
    // Past 1 MiB, grown inside two nested extensions.
    const floats = new Float32Array(300_000).fill(1.5);
    const encoded = encode({ list: [new Set([new Map([['f', floats]])])], tail: 'é'.repeat(5000) });
    for (let i = 0; i < 100; i++) encode({ i, s: 'x'.repeat(100) });
    expect(first).toEqual(copy);
    const back = decode<{ list: [Set<Map<string, Float32Array>>]; tail: string }>(encoded);
    const [map] = back.list[0];
    expect(Buffer.from(map!.get('f')!.buffer)).toEqual(Buffer.from(floats.buffer));
    expect(back.tail).toBe('é'.repeat(5000));
  });

  it('encodes a value whose toJSON itself encodes', () => {
    class Wrapped {
      toJSON() {
        return { inner: encode(new Map([[1, 2]])) };
      }
    }
    const back = decode<{ inner: Buffer }>(encode({ w: new Wrapped(), after: 1 })) as unknown as { w: { inner: Buffer }; after: number };
    expect(decode(back.w.inner)).toStrictEqual(new Map([[1, 2]]));
    expect(back.after).toBe(1);
  });

  it('refuses cycles and nesting past the limit, and the decoder counts the same way', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => encode(cyclic)).toThrow(/nests deeper than 256/);
    const loop = new Map<string, unknown>();
    loop.set('self', loop);
    expect(() => encode(loop)).toThrow(TypeError);
    expect(decode(encode(nest(MAX_DEPTH)))).toStrictEqual(nest(MAX_DEPTH));
    expect(() => encode(nest(MAX_DEPTH + 1))).toThrow(TypeError);
    // 128 Maps hold 256 arrays (payload and pair) on the wire: the limit, both ways.
    let maps: unknown = 0;
    for (let i = 0; i < MAX_DEPTH / 2; i++) maps = new Map([[0, maps]]);
    expect(decode(encode(maps))).toStrictEqual(maps);
    expect(() => encode([maps])).toThrow(TypeError);
    expect(() => decode(Buffer.concat([bytes('91'), encode(maps)]))).toThrow(/deeper than 256/);
  });

  it('portable profile: Maps, Sets and undefined at any depth become plain values', () => {
    const value = [undefined, { f: () => 1, m: new Map([[1, new Set([undefined])]]) }];
    // [nil, {"f": nil, "m": {1: [nil]}}]
    expect(hexOf(encodeResult(value, 'portable'))).toBe('92c082a166c0a16d810191c0');
    expect(decode(encodeResult(value, 'full'))).toStrictEqual([undefined, { f: undefined, m: new Map([[1, new Set([undefined])]]) }]);
  });

  it('refuses symbols', () => {
    expect(() => encode(Symbol('s'))).toThrow(/cannot encode a symbol/);
  });
});

describe('decoding', () => {
  it('accepts every header width, not only the shortest', () => {
    expect(decode(bytes('cd 00 05'))).toBe(5);
    expect(decode(bytes('d1 ff ff'))).toBe(-1);
    expect(decode(bytes('ca 3f c0 00 00'))).toBe(1.5);
    expect(decode(bytes('d3 00 00 00 00 00 00 00 05'))).toBe(5n);
    expect(decode(bytes('cf 00 00 00 00 00 00 00 05'))).toBe(5n);
    expect(decode(bytes('da 00 01 61'))).toBe('a');
    expect(decode(bytes('dc 00 01 01'))).toEqual([1]);
    expect(decode(bytes('df 00 00 00 01 a1 61 01'))).toEqual({ a: 1 });
    expect(decode(bytes('c9 00 00 00 05 4d 91 92 a1 61 01'))).toStrictEqual(new Map([['a', 1]]));
    expect(decode(bytes('c7 01 00 00'))).toBeUndefined();
    expect(decode(bytes('c7 04 ff 00 00 00 01'))).toStrictEqual(new Date(1000));
    expect(decode(bytes('d4 42 ff'))).toBe(-1n);
  });

  it('gives MessagePack maps as plain objects with string keys, __proto__ as an own property', () => {
    expect(decode(bytes('83 01 a1 61 c3 02 c0 03'))).toStrictEqual({ 1: 'a', true: 2, null: 3 });
    const obj = decode<Record<string, unknown>>(bytes('81 a9 5f 5f 70 72 6f 74 6f 5f 5f 81 a1 78 01'));
    expect(Object.getPrototypeOf(obj)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(obj, '__proto__')?.value).toEqual({ x: 1 });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('gives binary as a Buffer and typed arrays as aligned copies', () => {
    const source = bytes('92 c4 02 01 02 c7 09 74 08 00 00 00 00 00 00 f0 3f');
    const [bin, f64] = decode<[Buffer, Float64Array]>(source);
    expect(bin).toBeInstanceOf(Buffer);
    expect(f64).toStrictEqual(new Float64Array([1]));
    source[6] = 0; // the typed array does not share the message's memory
    expect(f64[0]).toBe(1);
  });

  it.each([
    ['the old tag-and-value Map form', 'd4 4d 00 91 92 a1 61 01', /undefined|extension 0x4d/],
    ['the old tag-and-value Set form', 'd4 73 00 92 01 02', /extension 0x73/],
    ['trailing bytes', '01 02', /1 bytes after the value/],
    ['the unused byte c1', 'c1', /starts no MessagePack value/],
    ['an unknown extension type', 'd4 05 00', /unknown extension type 5/],
    ['a Map payload with a second value', 'd5 4d 90 90', /more than one value/],
    ['a Map payload that runs past its end', 'd4 4d 91', /truncated/],
    ['a Map payload that is not pairs', 'd5 4d 91 01', /\[key, value\] pairs/],
    ['a Set payload that is not an array', 'd4 73 01', /must be a MessagePack array/],
    ['an Error payload of the wrong shape', 'd5 65 91 01', /\[name, message\]/],
    ['a RegExp with bad flags', 'c7 05 78 92 a1 61 a1 21', /RegExp/],
    ['undefined with another payload', 'd4 00 01', /single byte 00/],
    ['a typed array that is not whole elements', 'c7 04 74 03 01 02 03', /whole number of Int16Array/],
    ['a typed array of unknown kind', 'd5 74 0c 00', /unknown kind 12/],
    ['a timestamp of 5 bytes', 'c7 05 ff 00 00 00 00 00', /4, 8 or 12/],
    ['a map key that is an array', '81 90 01', /map key at offset 1/],
    ['an array count larger than the message', 'dd ff ff ff ff 00', /truncated/],
    ['a string longer than the message', 'db 00 00 10 00 61', /truncated/],
  ])('refuses %s', (_, hex, reason) => {
    expect(() => decode(bytes(hex))).toThrow(/^malformed MessagePack payload: /);
    expect(() => decode(bytes(hex))).toThrow(reason);
  });

  it('arguments must be one array; empty bytes are refused', () => {
    expect(decodeArgs(bytes('92 01 a1 61'))).toEqual([1, 'a']);
    expect(() => decodeArgs(bytes('2a'))).toThrow(/arguments must be a MessagePack array, got number/);
    expect(() => decode(Buffer.alloc(0))).toThrow(/empty MessagePack payload/);
  });
});

describe('resultProfile', () => {
  it('is portable unless the caller asks for full fidelity', () => {
    expect(resultProfile(undefined)).toBe('portable');
    expect(resultProfile({ fullFidelity: false })).toBe('portable');
    expect(resultProfile({ fullFidelity: true })).toBe('full');
  });
});
