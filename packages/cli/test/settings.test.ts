// Settings from flags, EASYREMOTE_* variables and a file: flags win over variables, which
// win over the file, value by value; every value is checked, and a refusal names the
// path, what was expected, and where the value came from.
import { describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '@easyremote/gateway';
import { GATEWAY_SETTINGS } from '../src/commands/gateway-settings.js';
import { convert, resolveSettings, type SettingSpec } from '../src/settings/layers.js';
import { SettingsError, type Problem } from '../src/settings/problems.js';

const flags = (entries: Record<string, unknown> = {}) => new Map(Object.entries(entries));
const gateway = (sources: { file?: unknown; env?: Record<string, string>; flags?: Record<string, unknown> }) =>
  resolveSettings(gatewayConfigSchema, GATEWAY_SETTINGS, {
    file: sources.file === undefined ? undefined : { label: 'gw.json', document: sources.file },
    env: sources.env ?? {},
    flags: flags(sources.flags),
  });

function problems(f: () => unknown): readonly Problem[] {
  try {
    f();
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  throw new Error('no SettingsError');
}

describe('precedence', () => {
  it('a flag beats a variable, which beats the file, value by value', () => {
    const file = { httpPort: 1001, port: 2001, heartbeatMs: 3001, tls: { cert: 'file.pem', key: 'file.key' } };
    const env = { EASYREMOTE_HTTP_PORT: '1002', EASYREMOTE_PORT: '2002', EASYREMOTE_TLS_CERT: 'env.pem' };
    expect(gateway({ file, env, flags: { 'http-port': '1003', 'tls-cert': 'flag.pem' } })).toMatchObject({
      httpPort: 1003,
      port: 2002,
      heartbeatMs: 3001,
      tls: { cert: 'flag.pem', key: 'file.key' },
    });
    expect(gateway({ file, env })).toMatchObject({ httpPort: 1002, tls: { cert: 'env.pem', key: 'file.key' } });
    expect(gateway({ file })).toMatchObject({ httpPort: 1001, tls: { cert: 'file.pem' } });
  });

  it('--no-metrics and EASYREMOTE_NO_METRICS replace the file\'s metrics object with false; a path given after sets an object again', () => {
    expect(gateway({ file: { metrics: { path: 'x.db' } }, flags: { 'no-metrics': true } })).toMatchObject({ metrics: false });
    expect(gateway({ file: { metrics: { path: 'x.db' } }, env: { EASYREMOTE_NO_METRICS: 'yes' } })).toMatchObject({ metrics: false });
    expect(gateway({ file: { metrics: { path: 'x.db' } }, env: { EASYREMOTE_NO_METRICS: 'false' } })).toMatchObject({ metrics: { path: 'x.db' } });
    expect(gateway({ file: { metrics: false }, flags: { 'metrics-path': 'y.db' } })).toMatchObject({ metrics: { path: 'y.db' } });
    expect(gateway({ flags: { 'no-coalesce-frames': true }, env: { EASYREMOTE_COALESCE_FRAMES: 'true' } })).toMatchObject({ coalesceFrames: false });
    expect(gateway({ flags: { 'heap-headroom-bytes': '0' }, env: { EASYREMOTE_HEAP_HEADROOM_BYTES: '1048576' } })).toMatchObject({ heapHeadroomBytes: 0 });
    expect(gateway({ env: { EASYREMOTE_HEAP_HEADROOM_BYTES: '1048576' } })).toMatchObject({ heapHeadroomBytes: 1048576 });
  });

  it('tokens and principals come from variables (never flags): a list, and JSON', () => {
    expect(
      gateway({ env: { EASYREMOTE_NODE_TOKENS: ' node-token-1 , node-token-2,', EASYREMOTE_PRINCIPALS: '[{"name":"ops","token":"ops-token-1","role":"admin"}]' } }),
    ).toMatchObject({ auth: { nodeTokens: ['node-token-1', 'node-token-2'], principals: [{ name: 'ops', role: 'admin' }] } });
    expect(GATEWAY_SETTINGS.filter((s) => s.path.startsWith('auth.')).every((s) => s.flag === undefined)).toBe(true);
  });

  it('an empty variable counts as unset', () => {
    expect(gateway({ file: { port: 7 }, env: { EASYREMOTE_PORT: '' } })).toMatchObject({ port: 7 });
  });
});

describe('refusals', () => {
  it('name the path, the expected type, and the flag, variable or file the value came from', () => {
    expect(problems(() => gateway({ file: { heartbeatMs: -5 }, env: { EASYREMOTE_LEASE_MS: 'soon' }, flags: { 'http-port': 'admin' } }))).toEqual([
      { path: 'heartbeatMs', message: 'expected a duration in ms (integer 1..2147483647), got -5', source: 'gw.json' },
      { path: 'leaseMs', message: 'expected a duration in ms (integer 1..2147483647), got "soon"', source: 'EASYREMOTE_LEASE_MS' },
      { path: 'httpPort', message: 'expected a port number (integer 0..65535), got "admin"', source: '--http-port' },
    ]);
  });

  it('a value nobody gave (a required one) names no source; a value set above it names that', () => {
    expect(problems(() => gateway({ file: {}, flags: { 'tls-cert': 'a.pem' } }))).toEqual([{ path: 'tls.key', message: 'expected a file path (a non-empty string), got nothing' }]);
    expect(problems(() => gateway({ env: { EASYREMOTE_PRINCIPALS: '[{"name":"ops","role":"boss","token":"ops-token-1"}]' } }))).toEqual([
      { path: 'auth.principals[0].role', message: 'expected a role (node, client or admin), got "boss"', source: 'EASYREMOTE_PRINCIPALS' },
    ]);
  });

  it('text that is not of its kind: a bool, JSON, key=value pairs, a file that is not an object', () => {
    expect(problems(() => gateway({ env: { EASYREMOTE_INSECURE: 'maybe' } }))).toEqual([{ path: 'insecure', message: 'expected true or false, got "maybe"', source: 'EASYREMOTE_INSECURE' }]);
    expect(problems(() => gateway({ env: { EASYREMOTE_NO_METRICS: 'maybe' } }))).toEqual([{ path: 'metrics', message: 'expected true or false, got "maybe"', source: 'EASYREMOTE_NO_METRICS' }]);
    expect(problems(() => gateway({ env: { EASYREMOTE_PRINCIPALS: '[{' } }))[0]).toMatchObject({ path: 'auth.principals', message: expect.stringMatching(/^expected JSON, got "\[\{" \(/), source: 'EASYREMOTE_PRINCIPALS' });
    expect(problems(() => gateway({ file: [1] }))).toEqual([{ path: '', message: 'expected a JSON object, got [1]', source: 'gw.json' }]);
    const pairs: SettingSpec = { path: 'labels', kind: 'pairs', flag: 'label', help: '' };
    expect(() => convert(pairs, ['zone=eu', 'gpu'], '--label')).toThrow(SettingsError);
    expect(problems(() => convert(pairs, ['zone=eu', 'gpu'], '--label'))).toEqual([{ path: 'labels', message: 'expected key=value, got "gpu"', source: '--label' }]);
  });
});

describe('conversion of flag and variable text', () => {
  const spec = (kind: SettingSpec['kind']): SettingSpec => ({ path: 'x', kind, help: '' });
  it.each([
    ['number', '8080', 8080],
    ['number', ' 0.25 ', 0.25],
    ['number', '1e3', 1000],
    ['number', '0x10', '0x10'],
    ['number', 'admin', 'admin'],
    ['bool', 'TRUE', true],
    ['bool', 'on', true],
    ['bool', '0', false],
    ['bool', 'No', false],
    ['bool', true, true],
    ['list', 'a, b,,c ', ['a', 'b', 'c']],
    ['pairs', ['zone=eu', 'tier = gpu', 'a=b=c'], { zone: 'eu', tier: 'gpu', a: 'b=c' }],
    ['pairs', 'zone=eu,tier=gpu', { zone: 'eu', tier: 'gpu' }],
    ['json', '{"a":[1]}', { a: [1] }],
    ['string', ' as is ', ' as is '],
  ] as const)('%s %j → %j', (kind, raw, value) => {
    expect(convert(spec(kind), raw, 'X')).toEqual(value);
  });
});
