// `easyremote gateway` configured from a file, EASYREMOTE_* variables and flags, as
// processes: a value refused in any of the three names its path, the expected type and
// where it came from, and nothing starts (status 2); a flag beats a variable, which beats
// the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './support/cluster.js';
import { runCli, startCliGateway } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-cli-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, document: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(document));
  return path;
}

describe('easyremote gateway configuration', () => {
  it('refuses invalid values from the file, a variable and a flag, each with its path, expected type and source', async () => {
    const path = configFile('invalid.json', { httpPort: 'admin', heartbeatMs: -5, functions: { train: { healthCheck: { retryCount: 'twice' } } } });
    const r = await runCli(['gateway', '--config', path, '--lease-ms', '1.5', '--port', '0'], { EASYREMOTE_QUEUE_SIZE: 'lots', EASYREMOTE_METRICS_PATH: ':memory:' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      'easyremote gateway: invalid settings:',
      `  heartbeatMs: expected a duration in ms (integer 1..2147483647), got -5 (from ${path})`,
      '  leaseMs: expected a duration in ms (integer 1..2147483647), got 1.5 (from --lease-ms)',
      `  functions.train.healthCheck.retryCount: expected an integer >= 0, got "twice" (from ${path})`,
      '  queueSize: expected an integer >= 0, got "lots" (from EASYREMOTE_QUEUE_SIZE)',
      `  httpPort: expected a port number (integer 0..65535), got "admin" (from ${path})`,
      '',
    ]);
  });

  it('a flag beats a variable, which beats the file', async () => {
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
    const path = configFile('ports.json', { httpPort: filePort, metrics: false });
    const env = { EASYREMOTE_HTTP_PORT: String(envPort) };
    const [flagWins, envWins] = await Promise.all([startCliGateway(['--config', path, '--http-port', String(flagPort)], env), startCliGateway(['--config', path], env)]);
    try {
      expect(flagWins.httpPort).toBe(flagPort);
      expect(envWins.httpPort).toBe(envPort);
    } finally {
      flagWins.signal('SIGTERM');
      envWins.signal('SIGTERM');
      expect((await flagWins.exited).code).toBe(0);
      expect((await envWins.exited).code).toBe(0);
    }
    // The file alone.
    const fileOnly = await startCliGateway([], { EASYREMOTE_CONFIG: path });
    fileOnly.signal('SIGINT');
    expect(fileOnly.httpPort).toBe(filePort);
    expect((await fileOnly.exited).stderr).toMatch(/SIGINT: gateway stopping/);
  });

  it('a value the schema cannot judge (a strategy option) is refused when the gateway is built: status 2', async () => {
    const path = configFile('options.json', { metrics: false, functions: { train: { strategy: 'least_load', strategyOptions: { tolerance: 'wide' } } } });
    const r = await runCli(['gateway', '--config', path, '--port', '0']);
    expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/^easyremote gateway: gateway config for train: .*tolerance/) });
  });

  it('a port in use: the gateway does not start, status 1', async () => {
    const first = await startCliGateway(['--no-metrics']);
    try {
      const port = first.address.split(':')[1]!;
      const r = await runCli(['gateway', '--port', port, '--no-metrics']);
      expect(r.code).toBe(1);
      // (What the line says about the port is the gateway's own message.)
      expect(r.stderr).toMatch(/^easyremote gateway: .+/m);
    } finally {
      first.signal('SIGTERM');
      await first.exited;
    }
  });
});
