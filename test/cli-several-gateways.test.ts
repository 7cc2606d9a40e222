// The command line with several gateways: `--gateway a,b` makes `easyremote node` register
// on each and `easyremote call` spread over them and go on when one is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '@easyremote/gateway';
import { runCli, startCli, type CliProcess } from './support/cli.js';
import { startGateway } from './support/cluster.js';

const FUNCTIONS = 'test/fixtures/cli-functions.js';
let a: Gateway;
let b: Gateway;
let node: CliProcess;

beforeAll(async () => {
  a = await startGateway();
  b = await startGateway();
  node = startCli(['node', FUNCTIONS, '--id', 'both', '--gateway', `${a.address}, ${b.address}`]);
  await node.waitForLine(/^node both serving hello, nap through /);
}, 60_000);

afterAll(async () => {
  node.signal('SIGKILL');
  await node.exited;
  await a.stop();
  await b.stop();
});

describe('easyremote with several gateways', () => {
  it('the node registers on every gateway it is given', async () => {
    for (const gw of [a, b]) {
      for (let i = 0; i < 100 && gw.nodes().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(gw.nodes().map((n) => n.nodeId)).toEqual(['both']);
    }
  });

  it('call goes through either gateway, and through the other when one is stopped', async () => {
    const gateways = `${a.address},${b.address}`;
    expect(await runCli(['call', 'hello', '--gateway', gateways])).toMatchObject({ code: 0, stdout: 'hello\n' });
    await a.stop();
    expect(await runCli(['call', 'hello', '--gateway', gateways])).toMatchObject({ code: 0, stdout: 'hello\n' });
  });

  it('an address list with a bad entry is refused, naming the setting', async () => {
    expect(await runCli(['call', 'hello', '--gateway', `${b.address},nohostport`])).toMatchObject({ code: 2, stderr: expect.stringContaining('gateway: expected gateway addresses (host:port, several separated by commas)') });
  });
});

describe('easyremote node when one of its gateways refuses it', () => {
  it('serves through the gateway that took it, and exits 0 once that gateway drains it', async () => {
    const open = await startGateway();
    // A gateway whose node principal may register gpu-* only: cpu-1 is refused for good.
    const strict = await startGateway({ auth: { principals: [{ name: 'fleet', token: 'fleet-token', role: 'node', nodeIds: ['gpu-*'] }] }, startupGraceMs: 0 });
    const cpu = startCli(['node', FUNCTIONS, '--id', 'cpu-1', '--gateway', `${open.address},${strict.address}`], { EASYREMOTE_TOKEN: 'fleet-token' });
    try {
      await cpu.waitForLine(/^node cpu-1 serving hello, nap through /);
      // The refusal has come (or comes) from the strict gateway; the process goes on.
      for (let i = 0; i < 100 && !/PERMISSION_DENIED/.test(cpu.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(cpu.stderr()).toMatch(/registration refused[\s\S]*PERMISSION_DENIED|PERMISSION_DENIED[\s\S]*registration refused/);
      const stillRunning = await Promise.race([cpu.exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 1000))]);
      expect(stillRunning).toBe(true);
      expect(strict.nodes()).toEqual([]);
      expect(await runCli(['call', 'hello', '--gateway', open.address])).toMatchObject({ code: 0, stdout: 'hello\n' });
      // Drained by the gateway (as by the dashboard's button): the node finishes and exits 0.
      expect(open.drainNode('cpu-1')).toBe(true);
      const exit = await Promise.race([cpu.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
      expect(exit?.code).toBe(0);
    } finally {
      cpu.signal('SIGKILL');
      await cpu.exited;
      await open.stop();
      await strict.stop();
    }
  }, 60_000);
});
