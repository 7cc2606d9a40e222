// What `call` prints: MessagePack values as JSON (mapped one way, as documented), the
// progress bar's line, and one exit status per error code.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@easyremote/protocol';
import { ERROR_EXIT_CODES, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeOf, progressLine, toJsonValue } from '../src/index.js';

describe('toJsonValue', () => {
  it.each([
    ['bytes', Buffer.from('hi'), { $base64: 'aGk=' }],
    ['a Uint8Array view', new Uint8Array([0, 1, 2, 3]).subarray(1, 3), { $base64: 'AQI=' }],
    ['other typed arrays', new Float32Array([0.5, 2]), [0.5, 2]],
    ['a BigInt64Array', new BigInt64Array([1n, 2n ** 62n]), [1, '4611686018427387904']],
    ['a safe bigint', 42n, 42],
    ['a large bigint', 2n ** 70n, '1180591620717411303424'],
    ['a date', new Date(0), '1970-01-01T00:00:00.000Z'],
    ['an invalid date', new Date(NaN), null],
    ['a map with string keys', new Map([['a', 1]]), { a: 1 }],
    ['a map with other keys', new Map<unknown, unknown>([[1, 'x'], ['b', 2n]]), [[1, 'x'], ['b', 2]]],
    ['a set', new Set([1, 'a']), [1, 'a']],
    ['undefined', undefined, null],
    ['NaN and infinities', [NaN, Infinity, -Infinity], ['NaN', 'Infinity', '-Infinity']],
    ['nested', { a: [new Set([1n])], b: { c: undefined } }, { a: [[1]], b: { c: null } }],
    ['plain JSON', { s: 'x', n: 1.5, t: true, z: null }, { s: 'x', n: 1.5, t: true, z: null }],
  ])('%s', (_name, value, json) => {
    expect(toJsonValue(value)).toEqual(json);
  });
});

describe('progressLine', () => {
  it('draws 30 cells, the percentage and the message', () => {
    expect(progressLine(0, '')).toBe('[------------------------------]   0%');
    expect(progressLine(0.5, 'half')).toBe('[###############---------------]  50% half');
    expect(progressLine(1, 'done')).toBe('[##############################] 100% done');
  });
  it('clamps the fraction and cuts the line to the terminal', () => {
    expect(progressLine(7, '')).toBe(progressLine(1, ''));
    expect(progressLine(-1, '')).toBe(progressLine(0, ''));
    expect(progressLine(NaN, '')).toBe(progressLine(0, ''));
    expect(progressLine(0.5, 'x'.repeat(100), 60)).toHaveLength(59);
  });
});

describe('exit statuses', () => {
  it('every catalogue code has its own status, 10 and up, apart from 0, 1 and 2', () => {
    const statuses = Object.keys(ERROR_CODES).map((code) => exitCodeOf(code));
    expect(new Set(statuses).size).toBe(Object.keys(ERROR_CODES).length);
    expect(statuses.every((s) => s >= 10 && s < 126)).toBe(true);
    expect([EXIT_OK, EXIT_FAILURE, EXIT_USAGE]).toEqual([0, 1, 2]);
    expect(Object.keys(ERROR_EXIT_CODES).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    expect(exitCodeOf('SOMETHING_ELSE')).toBe(EXIT_FAILURE);
  });
});
