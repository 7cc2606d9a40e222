// Every test vector of proto/wire-format.md against the codec, both ways: the document is
// what clients in other languages are written from, so it and the code may not drift.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../src/codec.js';

interface Vector {
  kind: string;
  /** The JS expression of the value. */
  js: string;
  profile: 'both' | 'full' | 'portable';
  hex: string;
}

const DOCUMENT = new URL('../../../proto/wire-format.md', import.meta.url);

/** The rows of the table under "## Test vectors". */
function readVectors(markdown: string): Vector[] {
  const section = markdown.split(/^## Test vectors$/m)[1];
  if (section === undefined) throw new Error('no "## Test vectors" section');
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| kind') && !line.startsWith('| ---'));
  return rows.map((line) => {
    const cells = line
      .slice(2, -2)
      .split(' | ')
      .map((c) => c.trim().replace(/^`|`$/g, ''));
    if (cells.length !== 5) throw new Error(`a vector row has ${cells.length} cells, not 5: ${line}`);
    const [kind, js, profile, hex] = cells as [string, string, Vector['profile'], string];
    if (!['both', 'full', 'portable'].includes(profile)) throw new Error(`unknown profile ${profile} in: ${line}`);
    return { kind, js, profile, hex };
  });
}

const evaluate = (js: string): unknown => new Function(`return (${js});`)();
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');

/** What decoding the portable form gives: the natural values of a plain MessagePack reader. */
function portableView(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Map) return Object.fromEntries(Array.from(value, ([k, v]) => [String(k), portableView(v)]));
  if (value instanceof Set) return Array.from(value, portableView);
  if (Array.isArray(value)) return value.map(portableView);
  if (value !== null && typeof value === 'object' && value.constructor === Object) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, portableView(v)]));
  }
  return value;
}

const vectors = readVectors(readFileSync(DOCUMENT, 'utf8'));

describe('proto/wire-format.md test vectors', () => {
  it('cover every kind of JS value the codec has a rule for, in each profile where they differ', () => {
    const kinds = new Set(vectors.map((v) => v.kind));
    for (const kind of ['undefined', 'Map', 'Set']) {
      expect(vectors.filter((v) => v.kind === kind).map((v) => v.profile).sort()).toEqual(['full', 'portable']);
    }
    for (const kind of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer', 'DataView', 'Error', 'RegExp']) {
      expect(kinds).toContain(kind);
    }
  });

  for (const v of vectors) {
    const profiles = v.profile === 'both' ? (['full', 'portable'] as const) : ([v.profile] as const);
    for (const profile of profiles) {
      it(`${v.kind} (${profile}): ${v.js} is ${v.hex}`, () => {
        const value = evaluate(v.js);
        expect(hexOf(encode(value, { portable: profile === 'portable' }))).toBe(v.hex);
        const back = decode(Buffer.from(v.hex.replace(/ /g, ''), 'hex'));
        const expected = profile === 'portable' ? portableView(value) : value;
        expect(back).toStrictEqual(expected);
      });
    }
  }
});
