// The `easyremote` command line as an operator uses it: `gateway` and `node` as separate
// processes, `call`, `status` and `top` against them, and the signals: SIGTERM to a node
// mid-call lets the call finish and the node exit; SIGTERM to the gateway lets the call in
// flight finish and writes every call row; a second SIGTERM forces.
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, Client } from '@easyremote/client';
import { ROOT } from './support/cluster.js';
import { cliCommand, cliEnv, logEntries, runCli, startCli, startCliGateway, type CliProcess } from './support/cli.js';

const MODULE = 'test/fixtures/cli-module.ts';
const FUNCTIONS = 'test/fixtures/cli-functions.js';
const dir = mkdtempSync(join(tmpdir(), 'easyremote-cli-'));
const db = join(dir, 'calls.db');

let gateway: CliProcess & { address: string; httpPort: number | undefined };
let node: CliProcess;
const started: CliProcess[] = [];

beforeAll(async () => {
  // Rows stay buffered (an hour between flushes) until the gateway stops: only a graceful stop writes them.
  gateway = await startCliGateway(['--metrics-path', db, '--metrics-flush-interval-ms', '3600000', '--startup-grace-ms', '0', '--http-port', '0']);
  node = startCli(['node', MODULE, '--gateway', gateway.address, '--id', 'cli-node', '--label', 'zone=eu', '--label', 'tier=gpu']);
  started.push(gateway, node);
  await node.waitForLine(/^node cli-node serving /);
}, 60_000);

afterAll(async () => {
  for (const p of started) p.signal('SIGKILL');
  await Promise.all(started.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

const call = (...args: string[]) => runCli(['call', ...args, '--gateway', gateway.address]);

describe('easyremote node', () => {
  it("serves the module's @remote methods and exported functions, with the labels given", async () => {
    const line = await node.waitForLine(/^node cli-node serving (.+) through /);
    expect(line[1]!.split(', ').sort()).toEqual(['add', 'count', 'fail', 'failAfter', 'greet', 'kinds', 'letters', 'slow', 'square', 'ticking', 'withProgress']);
    const admin = new AdminClient(gateway.address);
    try {
      const [info] = await admin.nodes();
      expect(info).toMatchObject({ nodeId: 'cli-node', capabilities: { labels: { zone: 'eu', tier: 'gpu' } } });
    } finally {
      admin.close();
    }
  });
});

describe('easyremote call', () => {
  it('prints results for people and as JSON, unary and streamed', async () => {
    const [add, addJson, greet, greetJson, count, letters, kinds, strategy] = await Promise.all([
      call('add', '[1, 2]'),
      call('add', '[1, 2]', '--json'),
      call('greet', '["bob"]'),
      call('greet', '["bob"]', '--json'),
      call('count', '[3]', '--stream', '--json'),
      call('letters', '["ab"]', '--stream'),
      call('kinds', '--json'),
      call('add', '[2, 2]', '--strategy', 'round_robin', '--timeout', '10000'),
    ]);
    expect(add).toMatchObject({ code: 0, stdout: '3\n', stderr: '' });
    expect(addJson).toMatchObject({ code: 0, stdout: '3\n' });
    expect(greet).toMatchObject({ code: 0, stdout: 'hello bob\n' });
    expect(greetJson).toMatchObject({ code: 0, stdout: '"hello bob"\n' });
    expect(count).toMatchObject({ code: 0, stdout: '1\n2\n3\n' });
    expect(letters).toMatchObject({ code: 0, stdout: 'a\nb\n' });
    expect(kinds.code).toBe(0);
    expect(JSON.parse(kinds.stdout)).toEqual({ bytes: { $base64: 'aGk=' }, big: '1180591620717411303424', when: '1970-01-01T00:00:00.000Z', map: { a: 1 }, set: [1, 2], nothing: null });
    expect(strategy).toMatchObject({ code: 0, stdout: '4\n' });
  });

  it('exits with the status of the error code, unary and streamed, with the error on stderr', async () => {
    const [fail, failJson, failAfter, failAfterHuman, missing, late, lateStream, badStrategy, noGateway] = await Promise.all([
      call('fail', '["nope"]'),
      call('fail', '["nope"]', '--json'),
      call('failAfter', '[2]', '--stream', '--json'),
      call('failAfter', '[1]', '--stream'),
      call('no_such_function', '[]'),
      call('slow', '[5000]', '--timeout', '300'),
      call('ticking', '[100, 200]', '--stream', '--timeout', '500', '--json'),
      call('add', '[1, 2]', '--strategy', 'no_such_strategy'),
      runCli(['call', 'add', '[1, 2]', '--gateway', '127.0.0.1:1']),
    ]);
    expect(fail).toMatchObject({ code: 10, stdout: '', stderr: 'easyremote call: REMOTE_ERROR: BadInput: nope\n' });
    expect(failJson.code).toBe(10);
    expect(JSON.parse(failJson.stderr)).toMatchObject({ error: { code: 'REMOTE_ERROR', message: 'nope', retryable: false, nodeId: 'cli-node', remoteName: 'BadInput', remoteStack: expect.stringContaining('BadInput: nope') } });
    expect(failAfter).toMatchObject({ code: 10, stdout: '1\n2\n' });
    expect(JSON.parse(failAfter.stderr)).toMatchObject({ error: { code: 'REMOTE_ERROR', message: 'failed after 2' } });
    expect(failAfterHuman).toMatchObject({ code: 10, stdout: '1\n', stderr: 'easyremote call: REMOTE_ERROR: BadInput: failed after 1\n' });
    expect(missing).toMatchObject({ code: 11, stderr: expect.stringMatching(/^easyremote call: FUNCTION_NOT_FOUND: function "no_such_function" is not registered\n$/) });
    expect(late).toMatchObject({ code: 15, stderr: expect.stringMatching(/^easyremote call: DEADLINE_EXCEEDED: /) });
    expect(lateStream.code).toBe(15);
    // Values that came before the deadline were printed, in order (how many depends on timing).
    expect(['', '0\n', '0\n1\n', '0\n1\n2\n']).toContain(lateStream.stdout);
    expect(JSON.parse(lateStream.stderr)).toMatchObject({ error: { code: 'DEADLINE_EXCEEDED' } });
    expect(badStrategy).toMatchObject({ code: 18, stderr: expect.stringMatching(/^easyremote call: INVALID_ARGUMENT: .*no_such_strategy/) });
    expect(noGateway).toMatchObject({ code: 26, stderr: expect.stringMatching(/^easyremote call: GATEWAY_UNAVAILABLE: /) });
  });

  it('refuses arguments that are not a JSON array, before calling (status 2)', async () => {
    const [notJson, notArray] = await Promise.all([call('add', 'not json'), call('add', '{"a": 1}')]);
    expect(notJson).toMatchObject({ code: 2, stderr: expect.stringContaining('args: expected a JSON array of arguments') });
    expect(notArray).toMatchObject({ code: 2, stderr: expect.stringContaining(`args: expected a JSON array of arguments (e.g. '[1, "a"]'), got {"a":1}`) });
  });

  it('draws a progress bar on stderr when it is a terminal', async () => {
    // `script` gives the command a terminal; what the terminal showed comes back on stdout.
    const command = [...cliCommand(), 'call', 'withProgress', "'[3, 50]'", '--gateway', gateway.address].join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let shown = '';
    child.stdout.on('data', (d: Buffer) => (shown += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(shown).toContain('\r[##########--------------------]  33% step 1 of 3\x1b[K');
    expect(shown).toContain('\r[##############################] 100% step 3 of 3\x1b[K');
    // The bar is cleared before the result is printed.
    expect(shown).toMatch(/\r\x1b\[K"?finished"?\r?\n/);
  });
});

describe('easyremote status and top', () => {
  it('status lists nodes, functions, load and alerts; --json gives one document', async () => {
    const [text, json] = await Promise.all([runCli(['status', '--gateway', gateway.address]), runCli(['status', '--json', '--gateway', gateway.address])]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^gateway ${gateway.address}: 1 node\\(s\\), 1 healthy; 11 function\\(s\\); last 60 s: \\d+ call\\(s\\)`));
    expect(text.stdout).toMatch(/\nNODES\nNODE +STATE +HEALTH +LOAD +CPU +MEM +GPU +IN-FLIGHT +CALLS\/S +P50 MS +P99 MS +ERRORS +FUNCTIONS\ncli-node +active /);
    expect(text.stdout).toMatch(/\nFUNCTIONS\nFUNCTION +STRATEGY +PROVIDERS +QUEUED +CALLS\/S +P50 MS +P99 MS +ERRORS\n/);
    expect(text.stdout).toMatch(/\nadd +smart_adaptive +1 +0 /);
    expect(text.stdout).toMatch(/\nALERTS\n/);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.gateway).toBe(gateway.address);
    expect(doc.nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['cli-node']);
    expect(doc.functions.map((f: { name: string }) => f.name).sort()).toContain('square');
    expect(doc.live.overall.calls).toBeGreaterThan(0);
    expect(Array.isArray(doc.alerts)).toBe(true);
  });

  it('top --once draws one frame; --iterations draws that many, then exits', async () => {
    const [once, twice] = await Promise.all([
      runCli(['top', '--once', '--gateway', gateway.address]),
      runCli(['top', '--iterations', '2', '--interval', '200', '--gateway', gateway.address]),
    ]);
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^easyremote top — \d\d:\d\d:\d\d UTC — [\d.]+ calls\/s now\n/);
    expect(once.stdout).toMatch(/\nNODE +STATE .*\ncli-node +active /);
    expect(once.stdout).toMatch(/\nFUNCTION +STRATEGY /);
    expect(once.stdout).not.toContain('\x1b[');
    expect(once.stdout.match(/^easyremote top/gm)).toHaveLength(1);
    expect(twice.code).toBe(0);
    expect(twice.stdout.match(/^easyremote top/gm)).toHaveLength(2);
  });

  it('top on a terminal: the alternate screen, redrawn in place, until q', async () => {
    const command = [...cliCommand(), 'top', '--interval', '200', '--gateway', gateway.address].join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let shown = '';
    let frames = 0;
    child.stdout.on('data', (d: Buffer) => {
      shown += d.toString();
      frames = shown.split('\x1b[H\x1b[2J').length - 1;
      // Two frames drawn: quit (once; the terminal echoes what is typed after top let go of it).
      if (frames >= 2 && !child.stdin.writableEnded) child.stdin.end('q');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(shown.startsWith('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2Jeasyremote top (q to quit) — ')).toBe(true);
    expect(frames).toBeGreaterThanOrEqual(2);
    expect(shown.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
  });

  it('status and top against no gateway exit with GATEWAY_UNAVAILABLE', async () => {
    const [status, top] = await Promise.all([runCli(['status', '--gateway', '127.0.0.1:1']), runCli(['top', '--once', '--gateway', '127.0.0.1:1'])]);
    expect(status).toMatchObject({ code: 26, stderr: expect.stringMatching(/^easyremote status: GATEWAY_UNAVAILABLE: /) });
    expect(top).toMatchObject({ code: 26, stdout: expect.stringMatching(/GATEWAY_UNAVAILABLE/) });
  });
});

describe('signals', () => {
  it('SIGTERM to a node mid-call: the call finishes, its result is delivered, the node exits 0', async () => {
    const napper = startCli(['node', FUNCTIONS, '--gateway', gateway.address, '--id', 'napper']);
    started.push(napper);
    await napper.waitForLine(/^node napper serving hello, nap through /);
    const client = new Client(gateway.address);
    try {
      const result = client.call('nap', [1500]);
      await napper.waitForLine(/^nap started$/);
      napper.signal('SIGTERM');
      expect(await result).toBe('napped 1500');
      const exit = await napper.exited;
      expect(exit.code).toBe(0);
      const log = logEntries(exit.stderr);
      expect(log).toContainEqual(expect.objectContaining({ level: 'info', component: 'node', nodeId: 'napper', msg: 'SIGTERM: node napper draining: no new calls, 1 call(s) in progress or waiting finish first; send SIGTERM again to force' }));
      expect(log).toContainEqual(expect.objectContaining({ msg: 'stopped', reason: 'drained' }));
    } finally {
      client.close();
    }
  });

  it('SIGTERM to the gateway: the call in flight finishes, every one of 50 calls has its row, exit 0', async () => {
    const client = new Client(gateway.address);
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('square', [i])));
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * i));
      const slow = client.call('slow', [1000]);
      await node.waitForLine(/^slow started 1000$/);
      gateway.signal('SIGTERM');
      expect(await slow).toBe('slept 1000');
    } finally {
      client.close();
    }
    const exit = await gateway.exited;
    expect(exit.code).toBe(0);
    const log = logEntries(exit.stderr);
    expect(log).toContainEqual(expect.objectContaining({ level: 'info', component: 'gateway', msg: 'SIGTERM: gateway stopping: new calls refused, 1 call(s) in flight get up to 10000 ms to finish; send SIGTERM again to force' }));
    expect(log).toContainEqual(expect.objectContaining({ msg: 'gateway stopped' }));
    const rows = new Database(db, { readonly: true });
    try {
      expect(rows.prepare("SELECT COUNT(*) AS n FROM calls WHERE function_name = 'square' AND success = 1").get()).toEqual({ n: 50 });
      expect(rows.prepare("SELECT COUNT(*) AS n FROM calls WHERE function_name = 'slow' AND success = 1").get()).toEqual({ n: 1 });
    } finally {
      rows.close();
    }
  });

  it('a second SIGTERM forces: the call in flight is ended CANCELLED, its row is written, exit 1', async () => {
    const forcedDb = join(dir, 'forced.db');
    const gw = await startCliGateway(['--metrics-path', forcedDb, '--grace-ms', '60000']);
    const napper = startCli(['node', FUNCTIONS, '--gateway', gw.address, '--id', 'napper-2']);
    started.push(gw, napper);
    await napper.waitForLine(/^node napper-2 serving /);
    const client = new Client(gw.address);
    try {
      const result = client.call('nap', [30_000]).then(
        () => 'finished',
        (err: { code?: string }) => err.code,
      );
      await napper.waitForLine(/^nap started$/);
      gw.signal('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      gw.signal('SIGTERM');
      expect(await result).toBe('CANCELLED');
      const exit = await gw.exited;
      expect(exit.code).toBe(1);
      expect(logEntries(exit.stderr)).toContainEqual(expect.objectContaining({ msg: 'SIGTERM again: forcing the stop' }));
    } finally {
      client.close();
    }
    const rows = new Database(forcedDb, { readonly: true });
    try {
      expect(rows.prepare("SELECT error_code AS code FROM calls WHERE function_name = 'nap'").all()).toEqual([{ code: 'CANCELLED' }]);
    } finally {
      rows.close();
    }
  });
});
