// The command line's own refusals, run in-process: bad flags, variables and arguments are
// refused with status 2 before anything starts or connects, naming the setting, what was
// expected and where the value came from.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run, type Io } from '../src/index.js';

async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: process.stdin,
    env,
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

describe('easyremote', () => {
  it('--help and --version exit 0; an unknown command or flag exits 2', async () => {
    expect(await cli(['--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: easyremote') });
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await cli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect(await cli(['gateway', '--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('--http-port <port>') });
    expect(await cli(['launch'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'launch'") });
    expect(await cli(['gateway', '--prot', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown option '--prot'") });
    expect(await cli(['call'])).toMatchObject({ code: 2, stderr: expect.stringContaining("missing required argument 'function'") });
  });

  it('gateway: every refused value is listed, then status 2', async () => {
    const r = await cli(['gateway', '--port', 'admin', '--grace-ms', '-1'], { EASYREMOTE_HEARTBEAT_MS: '0', EASYREMOTE_DEFAULT_STRATEGY: 'fastest' });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toEqual([
      'easyremote gateway: invalid settings:',
      '  port: expected a port number (integer 0..65535), got "admin" (from --port)',
      '  heartbeatMs: expected a duration in ms (integer 1..2147483647), got 0 (from EASYREMOTE_HEARTBEAT_MS)',
      expect.stringMatching(/^ {2}defaultStrategy: expected a strategy name \(one of .*\), got "fastest" \(from EASYREMOTE_DEFAULT_STRATEGY\)$/),
      '  shutdownGraceMs: expected a duration in ms (integer 0..2147483647), got -1 (from --grace-ms)',
      '',
    ]);
  });

  it('gateway: a configuration file that cannot be read or is not JSON', async () => {
    expect(await cli(['gateway', '--config', '/nonexistent/gw.json'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read the configuration file: ENOENT.* \(from \/nonexistent\/gw\.json\)/) });
    expect(await cli(['gateway'], { EASYREMOTE_CONFIG: '/nonexistent/env.json' })).toMatchObject({ code: 2, stderr: expect.stringContaining('(from /nonexistent/env.json)') });
  });

  it('node, call, status, top: the connection and their own settings are checked the same way', async () => {
    expect(await cli(['call', 'add', '[1]', '--timeout', '-1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('timeout: expected a duration in ms (integer 1..2147483647), got -1 (from --timeout)') });
    expect(await cli(['call', 'add'], { EASYREMOTE_GATEWAY: 'nohostport' })).toMatchObject({ code: 2, stderr: expect.stringContaining('gateway: expected gateway addresses (host:port, several separated by commas), got "nohostport" (from EASYREMOTE_GATEWAY)') });
    expect(await cli(['status', '--gateway', 'a:b'])).toMatchObject({ code: 2, stderr: expect.stringContaining('gateway: expected gateway addresses (host:port, several separated by commas), got "a:b" (from --gateway)') });
    expect(await cli(['top', '--iterations', '0'])).toMatchObject({ code: 2, stderr: expect.stringContaining('iterations: expected an integer 1..9007199254740991, got 0 (from --iterations)') });
    expect(await cli(['top', '--once'], { EASYREMOTE_TOP_INTERVAL_MS: '0' })).toMatchObject({ code: 2, stderr: expect.stringContaining('intervalMs: expected a duration in ms (integer 1..2147483647), got 0 (from EASYREMOTE_TOP_INTERVAL_MS)') });
    const node = await cli(['node', 'x.js', '--label', 'zone', '--max-concurrent', '0']);
    expect(node).toMatchObject({ code: 2, stderr: expect.stringContaining('labels: expected key=value, got "zone" (from --label)') });
    expect(await cli(['node', 'x.js', '--max-concurrent', '1.5'])).toMatchObject({ code: 2, stderr: expect.stringContaining('maxConcurrent: expected an integer 1..9007199254740991, got 1.5 (from --max-concurrent)') });
    // An empty flag value is a value (refused here); an empty variable is unset.
    expect(await cli(['node', 'x.js', '--tls-ca', ''], { EASYREMOTE_TLS_SERVER_NAME: '' })).toMatchObject({ code: 2, stderr: 'easyremote node: invalid settings:\n  tls.ca: expected a file path (a non-empty string), got "" (from --tls-ca)\n' });
  });

  it('node: no gateway accepting it within --connect-timeout-ms exits 1 with why', async () => {
    const module = fileURLToPath(new URL('../../../test/fixtures/cli-functions.js', import.meta.url));
    const t0 = Date.now();
    const r = await cli(['node', module, '--gateway', '127.0.0.1:1', '--id', 'lonely', '--connect-timeout-ms', '300', '--log-level', 'silent']);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^easyremote node: .*127\.0\.0\.1:1/) });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await cli(['node', module, '--log-level', 'loud'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('logger.level: expected a log level (fatal, error, warn, info, debug, trace or silent), got "loud" (from --log-level)'),
    });
  });

  it('node: a module that cannot be loaded or exports nothing to serve exits 1 with why', async () => {
    expect(await cli(['node', '/nonexistent/module.js'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^easyremote node: Cannot find module/) });
    expect(await cli(['node', fileURLToPath(new URL('../../../test/fixtures/cli-empty.js', import.meta.url))])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/cli-empty\.js exports nothing to serve: no class or object with @remote methods, and no function\n$/),
    });
  });
});
